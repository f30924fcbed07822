"""The dataset card (README.md) of a published version: YAML front matter the Hub and `datasets`
read (configs, license, tags), then what the data is, how it was made, its quality numbers and how
to train on it.

`render_card(root, dataset, version)` is the whole card as text; `prefmill publish` (prefmill/hub.py)
writes it as README.md beside the data files (one per config and split, prefmill/splits.py), with the
PNG plots of prefmill/card_plots.py.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from prefmill.card_plots import histograms, plot_paths, quality_section
from prefmill.card_usage import looks_like_hub_id as _looks_like_hub_id
from prefmill.card_usage import usage_section
from prefmill.errors import StoreError
from prefmill.splits import SplitFile, Splits, write_splits
from prefmill.store import read_manifest

STORED_SPLIT = "train"
"""The one split a store version holds: each config whole; publish cuts it (prefmill/splits.py)."""

MARKER = re.compile(
    r"<!-- prefmill: dataset=(\S+) version=(\S+) content_hash=([0-9a-f]{64})(?: (splits=\S+ test_size=\S+))? -->")
"""The machine-readable line of every card: what a second publish compares with (the split settings
too: the same version cut differently is other files)."""

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
                splits: Splits = Splits()) -> str:
    """The dataset card (README.md text) of `dataset`'s `version` in the store at `root`, exactly as
    `prefmill publish` with the same `splits` writes it.

    `version`: `v0003`, `3`, or None for the latest. `repo`: the Hub id or folder the card's usage
    snippets load from (default: a `<user>/<dataset>` placeholder). Raises `StoreError` when the version
    does not exist. Cuts the splits into a temporary folder, as publish does, to count their rows and
    bytes."""
    manifest = read_manifest(root, dataset, version)
    folder = root / dataset / manifest["version"]
    sources = {config: folder / info["path"] for config, info in version_configs(manifest).items()}
    with tempfile.TemporaryDirectory(prefix="prefmill-card-") as tmp:
        layout = write_splits(sources, splits, Path(tmp))
    return card_from_manifest(manifest, layout, repo=repo, folder=folder, splits=splits)


def card_from_manifest(manifest: dict[str, Any], layout: dict[str, dict[str, SplitFile]], *, repo: str | None = None,
                       folder: Path | None = None, splits: Splits = Splits()) -> str:
    """`render_card` for a manifest already read and cut (`layout`: `splits.write_splits`' result);
    `folder` (the version's folder) adds numbers read from its tables."""
    configs = version_configs(manifest)
    if not configs:
        raise StoreError(f"{manifest.get('dataset')} {manifest.get('version')}: the manifest lists no data files",
                         hint="the version is damaged: restore it from a backup")
    counts = {config: {name: f.rows for name, f in files.items()} for config, files in layout.items()}
    meta = card_metadata(manifest, layout)
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    body = _body(manifest, configs, counts, repo=repo, folder=folder, splits=splits)
    return f"---\n{front}---\n\n{body}"


def version_configs(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """config -> {path, rows, sha256, bytes} of the version's stored (whole) files, in manifest order."""
    found = {}
    for rel, info in (manifest.get("files") or {}).items():
        parts = PurePosixPath(rel).parts
        if (len(parts) == 3 and parts[0] == "data" and parts[2].startswith(f"{STORED_SPLIT}-")
                and parts[2].endswith(".parquet")):
            found[parts[1]] = {"path": rel, **info}
    return found


def card_metadata(manifest: dict[str, Any], layout: dict[str, dict[str, SplitFile]]) -> dict[str, Any]:
    """The YAML front matter: `configs` with one data file per published (non-empty) split (so
    `load_dataset(repo, "<config>")` works), `dataset_info` (rows and Arrow bytes per split), licence,
    tags, task categories, size category and a pretty name."""
    configs = {c: {s: f for s, f in files.items() if f.path} for c, files in layout.items()}
    configs = {c: files for c, files in configs.items() if files}
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
    rows = max((sum(f.rows for f in c.values()) for c in configs.values()), default=0)
    return {
        "pretty_name": f"{manifest.get('dataset')} {manifest.get('version')}",
        "license": license_of(manifest),
        "language": ["en"],
        "tags": tags,
        "task_categories": ["text-generation"] + (["reinforcement-learning"] if flow == "process" else []),
        "size_categories": [_size_category(rows)],
        "configs": [
            {"config_name": name, **({"default": True} if name == default else {}),
             "data_files": [{"split": split, "path": f"data/{name}/{split}-*.parquet"} for split in splits]}
            for name, splits in configs.items()
        ],
        "dataset_info": [
            {"config_name": name,
             "splits": [{"name": split, "num_bytes": f.num_bytes, "num_examples": f.rows} for split, f in splits.items()]}
            for name, splits in configs.items()
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


def card_marker(card: str) -> tuple[str, str, str, str | None] | None:
    """(dataset, version, content_hash, split key) recorded in a card (split key None: a card written
    before publish split versions), or None for a card prefmill did not write."""
    match = MARKER.search(card)
    return match.groups() if match else None  # type: ignore[return-value]


# --- the body ---


def _body(manifest: dict[str, Any], configs: dict[str, dict[str, Any]], counts: dict[str, dict[str, int]], *,
          repo: str | None, folder: Path | None, splits: Splits) -> str:
    dataset, name = manifest.get("dataset", "?"), manifest.get("version", "?")
    recipe = manifest.get("config") or {}
    stats = manifest.get("stats") or {}
    flow = recipe.get("flow", "preference")
    out = [
        (f"<!-- prefmill: dataset={dataset} version={name} content_hash={manifest.get('content_hash', '')} "
         f"{splits.key} -->"),
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
        "| config | rows | " + " | ".join(f"`{s}`" for s in splits.published) + " | what it is |",
        "|---|---:|" + "---:|" * len(splits.published) + "---|",
    ]
    for config, rows in counts.items():
        cells = " | ".join(f"{rows.get(s, 0):,}" if rows.get(s) else "0 (not published)" for s in splits.published)
        out.append(f"| `{config}` | {sum(rows.values()):,} | {cells} | {DESCRIPTIONS.get(config, '')} |")
    out += ["", _splits_text(counts, splits), "", "## How it was made", "", _recipe_table(recipe, flow), ""]
    out += quality_section(stats, configs, folder)
    out += _plots(manifest)
    out += usage_section(counts, stats, recipe, dataset=dataset, name=name, repo=repo, splits=splits)
    return "\n".join(out).rstrip() + "\n"


def _splits_text(counts: dict[str, dict[str, int]], splits: Splits) -> str:
    if not splits.test_size:
        text = f"Every row is in the `{splits.train}` split (published with test size 0: no test split)."
    else:
        text = (f"**Splits, by prompt**: a row is in `{splits.test}` when the sha256 of its `prompt_id` (first 8 bytes "
                f"as a fraction of 2^64) is below {splits.test_size}, else in `{splits.train}`. The side depends on the "
                f"prompt alone: a prompt is on the same side in every config and in every version published with "
                f"test size {splits.test_size}.")
    empty = [f"`{s}` of `{c}`" for c, rows in counts.items() for s in splits.published if not rows.get(s)]
    if empty:
        text += f" Empty, so not published: {', '.join(empty)}."
    return text


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


def _plots(manifest: dict[str, Any]) -> list[str]:
    plots = plot_paths(manifest)
    if not plots:
        return []
    titles = {name: title for name, (title, _) in histograms(manifest).items()}
    out = ["## Plots", ""]
    for rel in plots:
        stem = PurePosixPath(rel).stem
        out += [f"![{titles.get(stem, stem)}]({rel})", ""]
    return out


# --- helpers ---


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


def _size_category(rows: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if rows < limit:
            return label
    return "1M<n<10M"


def _code(value: Any) -> str:
    return f"`{value}`"


def _value(value: Any) -> str:
    return "null" if value is None else str(value).replace("|", "\\|").replace("\n", " ")
