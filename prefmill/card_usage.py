"""The card's Usage section: how to load each config's splits and train on them (TRL), with the split
names and revision the publish actually wrote."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from prefmill.splits import Splits

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def usage_section(counts: dict[str, dict[str, int]], stats: dict[str, Any], recipe: dict[str, Any], *, dataset: str,
                  name: str, repo: str | None, splits: Splits) -> list[str]:
    """Markdown lines; `counts`: config -> {split: rows} as published (empty splits are not)."""
    where = repo or f"<user>/{dataset}"
    model = policy_model(recipe)
    revision = "" if repo and not looks_like_hub_id(repo) else f', revision="{name}"'
    smoothing = ((stats.get("pairs") or {}).get("cream") or {}).get("mean_label_smoothing")
    out = ["## Usage", ""]
    for config, rows in counts.items():
        published = [s for s in splits.names if rows.get(s)]
        if not published:
            continue
        load = f'ds = load_dataset("{where}", "{config}"{revision})  # splits: {", ".join(published)}'
        train = splits.train
        if config in ("pairs", "step_pairs", "rise_steps") and train in published:
            extra = f", label_smoothing={smoothing}" if config == "pairs" and smoothing else ""
            evaluate = f', eval_dataset=ds["{splits.test}"]' if splits.test in published else ""
            out += [f"`{config}` with TRL's `DPOTrainer` (conversational `prompt` / `chosen` / `rejected`):", "",
                    "```python", "from datasets import load_dataset",
                    "from transformers import AutoModelForCausalLM, AutoTokenizer",
                    "from trl import DPOConfig, DPOTrainer", "", load,
                    f'model = AutoModelForCausalLM.from_pretrained("{model}")',
                    f'tokenizer = AutoTokenizer.from_pretrained("{model}")',
                    f'args = DPOConfig(output_dir="dpo-{config}"{extra})',
                    f'trainer = DPOTrainer(model=model, args=args, train_dataset=ds["{train}"]{evaluate}, '
                    "processing_class=tokenizer)",
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
                    f'row = ds["{published[0]}"][0]  # row["completions"][i] is step i, row["labels"][i] whether it can '
                    "still reach the answer",
                    "```", ""]
        else:
            out += [f"`{config}`:", "", "```python", "from datasets import load_dataset", "", load, "```", ""]
    return out


def policy_model(recipe: dict[str, Any]) -> str:
    """The model that made the data when the recipe names it by Hub id, else prefmill's default model."""
    model = str((recipe.get("engine") or {}).get("model") or "")
    return model if looks_like_hub_id(model) and not Path(model).exists() else DEFAULT_MODEL


def looks_like_hub_id(text: str) -> bool:
    """`namespace/name` (as the Hub spells repository ids), not a file name such as `data/train.jsonl`."""
    return bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*", text)) and not re.search(
        r"\.(jsonl|json|parquet|csv|txt)$", text, re.IGNORECASE)
