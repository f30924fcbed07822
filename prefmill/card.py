"""The dataset card (README.md) of a published version: YAML front matter the Hub and `datasets`
read (configs, license, tags), then what the data is, how it was made, its quality numbers and how
to train on it.

`render_card(root, dataset, version)` is the whole card as text; `prefmill publish` (prefmill/hub.py)
writes it as README.md beside the data files, with the PNG plots of prefmill/card_plots.py.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from prefmill.card_plots import histograms, quality_section
from prefmill.errors import StoreError
from prefmill.store import read_manifest

SPLIT = "train"

MARKER = re.compile(r"<!-- prefmill: dataset=(\S+) version=(\S+) content_hash=([0-9a-f]{64}) -->")
"""The machine-readable line of every card: what a second publish compares with."""

KNOWN_LICENSES = {"gsm8k": "mit", "openai/gsm8k": "mit"}
"""Licences of prompt sources prefmill knows (by Hub id or file/folder name); any other source: `other`."""

DESCRIPTIONS = {
    "samples": "every generated answer with its verdict (math-verify), vote and judge columns",
    "pairs": "preference pairs in TRL's conversational format (`prompt` / `chosen` / `rejected` message lists)",
    "votes": "one row per prompt: majority and logprob-weighted votes, pass rate, difficulty",
    "rise_steps": "step-level RISE pairs: the same correct prefix, then the original step vs the one with a subtle error",
    "steps": "TRL stepwise supervision: `prompt`, `completions` (the steps), `labels` (+ soft `values`)",
    "step_pairs": "step-level preference pairs (Step-DPO): from one prefix, a step that can still reach the answer vs one that cannot",
}

# The recipe settings the card shows, per section (the full recipe is in the version's manifest).
_SETTINGS = {
    "generate": ["n", "temperature", "top_p", "max_tokens", "seed"],
    "decontamination": ["enabled", "ngram", "min_overlap"],
    "vote": ["enabled", "easy_at", "hard_below"],
    "judge": ["pointwise", "pairwise", "samples", "temperature", "constrained"],
    "pairs": ["strategy", "judge_weight", "min_margin", "max_pairs_per_prompt", "curriculum", "reference_as_chosen",
              "rejected"],
    "filters": ["require_swap_consistent", "scir_min_agreement", "verifier_judge_agreement", "cream"],
    "rise": ["enabled", "editor", "mode", "edits_per_solution", "use_reference", "constrained", "max_changed_share",
             "ratio"],
    "process": ["chains", "split", "method", "rollouts", "budget", "consensus", "balance", "witness"],
}
_FLOW_SECTIONS = {
    "preference": ["generate", "decontamination", "vote", "judge", "pairs", "filters", "rise"],
    "process": ["generate", "decontamination", "vote", "process"],
}


def render_card(root: Path, dataset: str, version: str | None = None, *, repo: str | None = None,
                plots: list[str] | None = None) -> str:
    """The dataset card (README.md text) of `dataset`'s `version` in the store at `root`.

    `version`: `v0003`, `3`, or None for the latest. `repo`: the Hub id or folder the card's usage
    snippets load from (default: a `<user>/<dataset>` placeholder). `plots`: PNG paths relative to the
    repository (`plots/margin_histogram.png`, written by `card_plots.render_plots`) the card shows;
    None: none (the histograms are always in the card as tables). Raises `StoreError` when the version
    does not exist. Reads only the manifest and, for swap consistency, one column of `pairs`."""
    manifest = read_manifest(root, dataset, version)
    folder = root / dataset / manifest["version"]
    return card_from_manifest(manifest, repo=repo, plots=plots, folder=folder)


def card_from_manifest(manifest: dict[str, Any], *, repo: str | None = None, plots: list[str] | None = None,
                       folder: Path | None = None) -> str:
    """`render_card` for a manifest already read; `folder` (the version's folder) adds numbers read
    from its tables."""
    configs = version_configs(manifest)
    if not configs:
        raise StoreError(f"{manifest.get('dataset')} {manifest.get('version')}: the manifest lists no data files",
                         hint="the version is damaged: restore it from a backup")
    meta = card_metadata(manifest)
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    body = _body(manifest, configs, repo=repo, plots=plots or [], folder=folder)
    return f"---\n{front}---\n\n{body}"


def version_configs(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """config -> {path, rows, sha256, bytes} of the version's `train` files, in manifest order."""
    found = {}
    for rel, info in (manifest.get("files") or {}).items():
        parts = PurePosixPath(rel).parts
        if len(parts) == 3 and parts[0] == "data" and parts[2].startswith(f"{SPLIT}-") and parts[2].endswith(".parquet"):
            found[parts[1]] = {"path": rel, **info}
    return found


def card_metadata(manifest: dict[str, Any]) -> dict[str, Any]:
    """The YAML front matter: `configs` (so `load_dataset(repo, "<config>")` works), licence, tags, task
    categories, size category and a pretty name."""
    configs = version_configs(manifest)
    recipe = manifest.get("config") or {}
    flow = recipe.get("flow", "preference")
    tags = ["prefmill", "synthetic"]
    if "pairs" in configs or "step_pairs" in configs or "rise_steps" in configs:
        tags += ["dpo", "preference"]
    if "steps" in configs:
        tags += ["process-supervision", "prm"]
    if (recipe.get("rise") or {}).get("enabled"):
        tags.append("rise")
    tags += ["math"] + (["gsm8k"] if _source_key(recipe) in ("gsm8k", "openai/gsm8k") else [])
    default = next((c for c in ("pairs", "steps", "step_pairs") if c in configs), next(iter(configs), None))
    rows = max((int(c.get("rows", 0)) for c in configs.values()), default=0)
    return {
        "pretty_name": f"{manifest.get('dataset')} {manifest.get('version')}",
        "license": license_of(manifest),
        "language": ["en"],
        "tags": tags,
        "task_categories": ["text-generation"] + (["reinforcement-learning"] if flow == "process" else []),
        "size_categories": [_size_category(rows)],
        "configs": [
            {"config_name": name, **({"default": True} if name == default else {}),
             "data_files": [{"split": SPLIT, "path": f"data/{name}/{SPLIT}-*.parquet"}]}
            for name in configs
        ],
    }


def license_of(manifest: dict[str, Any]) -> str:
    """The prompt source's licence when prefmill knows it (GSM8K: MIT), else `other`."""
    return KNOWN_LICENSES.get(_source_key(manifest.get("config") or {}), "other")


def front_matter(card: str) -> dict[str, Any]:
    """The parsed YAML front matter of a card (`---` ... `---` at its top)."""
    match = re.match(r"^---\n(.*?)\n---\n", card, re.DOTALL)
    if not match:
        raise StoreError("the card has no YAML front matter")
    return yaml.safe_load(match.group(1))


def card_marker(card: str) -> tuple[str, str, str] | None:
    """(dataset, version, content_hash) recorded in a card, or None for a card prefmill did not write."""
    match = MARKER.search(card)
    return match.groups() if match else None  # type: ignore[return-value]


# --- the body ---


def _body(manifest: dict[str, Any], configs: dict[str, dict[str, Any]], *, repo: str | None, plots: list[str],
          folder: Path | None) -> str:
    dataset, name = manifest.get("dataset", "?"), manifest.get("version", "?")
    recipe = manifest.get("config") or {}
    stats = manifest.get("stats") or {}
    flow = recipe.get("flow", "preference")
    out = [
        f"<!-- prefmill: dataset={dataset} version={name} content_hash={manifest.get('content_hash', '')} -->",
        f"# {dataset} · {name}",
        "",
        (f"Synthetic {'preference' if flow == 'preference' else 'process-supervision'} data for LLM post-training, "
        f"made by prefmill (`{flow}` flow) from the prompts of {_source_text(recipe)}, "
        f"with the model `{manifest.get('engine', '?')}` (engine fingerprint; kind `{(recipe.get('engine') or {}).get('kind', '?')}`). "
        "Every answer was checked by math-verify against the source's reference answer (or, where a prompt has none, "
        "the majority vote of its samples)."),
        "",
        (f"- version `{name}` (parent: {_code(manifest.get('parent')) if manifest.get('parent') else 'none'}), "
        f"created {manifest.get('created_at', '?')}, prefmill git `{(manifest.get('git_sha') or 'unknown')[:12]}`"),
        f"- content hash `{manifest.get('content_hash', '')}` (files + recipe): the same hash is the same data",
        (f"- licence `{license_of(manifest)}`: the prompts' licence. The answers were generated by the model above; "
        "check its licence and terms of use too."),
        "",
        "## Configs",
        "",
        "| config | rows | what it is |",
        "|---|---:|---|",
    ]
    for config, info in configs.items():
        out.append(f"| `{config}` | {int(info.get('rows', 0)):,} | {DESCRIPTIONS.get(config, '')} |")
    out += ["", "## How it was made", "", _recipe_table(recipe, flow), ""]
    out += quality_section(stats, configs, folder)
    out += _plots(manifest, plots)
    out += _usage(configs, stats, recipe, dataset=dataset, name=name, repo=repo)
    return "\n".join(out).rstrip() + "\n"


def _recipe_table(recipe: dict[str, Any], flow: str) -> str:
    rows = ["| step | settings |", "|---|---|"]
    for section in _FLOW_SECTIONS.get(flow, list(_SETTINGS)):
        values = recipe.get(section)
        if not isinstance(values, dict):
            continue
        shown = [f"{k}={_value(values[k])}" for k in _SETTINGS[section] if k in values]
        if "enabled" in values and not values["enabled"]:
            shown = ["off"]
        rows.append(f"| {section} | {', '.join(shown) or '-'} |")
    return "\n".join(rows)


def _plots(manifest: dict[str, Any], plots: list[str]) -> list[str]:
    if not plots:
        return []
    titles = {name: title for name, (title, _) in histograms(manifest).items()}
    out = ["## Plots", ""]
    for rel in plots:
        stem = PurePosixPath(rel).stem
        out += [f"![{titles.get(stem, stem)}]({rel})", ""]
    return out


def _usage(configs: dict[str, Any], stats: dict[str, Any], recipe: dict[str, Any], *, dataset: str, name: str,
           repo: str | None) -> list[str]:
    where = repo or f"<user>/{dataset}"
    model = _policy_model(recipe)
    revision = "" if repo and not _looks_like_hub_id(repo) else f', revision="{name}"'
    out = ["## Usage", ""]
    smoothing = ((stats.get("pairs") or {}).get("cream") or {}).get("mean_label_smoothing")
    for config in configs:
        load = f'ds = load_dataset("{where}", "{config}", split="{SPLIT}"{revision})'
        if config in ("pairs", "step_pairs", "rise_steps"):
            extra = f", label_smoothing={smoothing}" if config == "pairs" and smoothing else ""
            out += [f"`{config}` with TRL's `DPOTrainer` (conversational `prompt` / `chosen` / `rejected`):", "",
                    "```python", "from datasets import load_dataset",
                    "from transformers import AutoModelForCausalLM, AutoTokenizer",
                    "from trl import DPOConfig, DPOTrainer", "", load,
                    f'model = AutoModelForCausalLM.from_pretrained("{model}")',
                    f'tokenizer = AutoTokenizer.from_pretrained("{model}")',
                    f'args = DPOConfig(output_dir="dpo-{config}"{extra})',
                    "trainer = DPOTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer)",
                    "trainer.train()", "```", ""]
            if config == "pairs":
                out += [("Pairs also carry `weight`, `label_smoothing`, `curriculum_rank` (train in that order for the "
                        "curriculum), scores, the SCIR signals and each side's provenance; keep them with "
                        "`DPOConfig(remove_unused_columns=False)` for per-pair use."), ""]
        elif config == "steps":
            out += [("`steps` is TRL's stepwise-supervision format (`prompt`, `completions`, `labels`; soft `values` "
                    "with their `rollout_counts`). TRL removed its `PRMTrainer` (it is not in TRL 1.x): train a "
                    "process reward model with your own token-classification loop, or keep an older TRL."), "",
                    "```python", "from datasets import load_dataset", "", load,
                    'row = ds[0]  # row["completions"][i] is step i, row["labels"][i] whether it can still reach the answer',
                    "```", ""]
        else:
            out += [f"`{config}`:", "", "```python", "from datasets import load_dataset", "", load, "```", ""]
    return out


# --- helpers ---


def _policy_model(recipe: dict[str, Any]) -> str:
    """The model that made the data when the recipe names it by Hub id, else prefmill's default model."""
    model = str((recipe.get("engine") or {}).get("model") or "")
    return model if _looks_like_hub_id(model) and not Path(model).exists() else "HuggingFaceTB/SmolLM2-135M-Instruct"


def _source_key(recipe: dict[str, Any]) -> str:
    """`openai/gsm8k` for a Hub id, `gsm8k` for a local file or folder named after it."""
    path = str((recipe.get("source") or {}).get("path") or "")
    if _looks_like_hub_id(path) and not Path(path).exists():
        return path.lower()
    parts = [p.lower() for p in PurePosixPath(path.replace("\\", "/")).parts]
    named = (key for key in KNOWN_LICENSES
             if "/" not in key and any(p == key or p.startswith((f"{key}.", f"{key}-")) for p in parts))
    return next(named, parts[-1] if parts else "")


def _source_text(recipe: dict[str, Any]) -> str:
    """The prompt source without the local folders around it (they name the machine, not the data)."""
    source = recipe.get("source") or {}
    path = str(source.get("path") or "?")
    if _looks_like_hub_id(path) and not Path(path).exists():
        text = f"the Hub dataset `{path}`"
        if source.get("subset"):
            text += f" (subset `{source['subset']}`)"
    else:
        text = f"the local file `{'/'.join(PurePosixPath(path.replace(chr(92), '/')).parts[-2:])}`"
    text += f", split `{source.get('split', '?')}`"
    if source.get("offset") or source.get("limit"):
        text += f", rows {source.get('offset', 0)}..{source.get('offset', 0) + source['limit'] if source.get('limit') else 'end'}"
    return text


def _looks_like_hub_id(text: str) -> bool:
    """`namespace/name` (as the Hub spells repository ids), not a file name such as `data/train.jsonl`."""
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*", text)) and not re.search(
        r"\.(jsonl|json|parquet|csv|txt)$", text, re.IGNORECASE)


def _size_category(rows: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return label
    return "1M<n<10M"


def _code(value: Any) -> str:
    return f"`{value}`"


def _value(value: Any) -> str:
    return "null" if value is None else str(value).replace("|", "\\|").replace("\n", " ")
