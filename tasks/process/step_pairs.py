"""Step-level preference pairs from step-labelled chains (Step-DPO, Lai et al. 2024; MCTS-DPO, Xie et al. 2024).

Two chains of one question that agree on their first `i` steps (text-identical; `i = 0` is the empty
prefix, which every chain of a question shares) and then diverge give a step-level contrast: from the
same prefix, one next step can still reach the right answer (hard label True, MC value > 0) and the
other cannot (label False, value 0). Step-DPO trains on exactly that: prompt = question + correct
prefix, chosen = a correct next step, rejected = the first wrong step.

Which pairs are produced, exactly:
- Only from a prefix that can still reach the answer (Step-DPO's prompt is the question and a correct
  prefix): the empty prefix, or one whose last step some chain holding it labels True.
- For every question and every such prefix shared by at least two chains, the candidate next steps are the
  distinct texts of step `i + 1` among the chains with that prefix. A text's label is True when any of
  its chains labels it True (Math-Shepherd's hard estimate over all of its rollouts) and its value is
  the mean of its chains' values. A chain whose step `i + 1` has a null label or value (the engine
  failed on it) does not count for that text; a text with no labelled chain is no candidate.
- Every (True text, False text) combination at that prefix with chosen value > rejected value is a
  pair, so each pair is unique per (prompt_id, prefix, chosen text, rejected text).
- `kind` is `first_error` when the rejected step is the first wrong step (`first_error_step == i`) of
  one of its chains (the Step-DPO pair: the first error against a correct step from the same prefix),
  else `contrast` (its chain already had a False label earlier, where the chosen chain's identical
  step was labelled True: MC noise, the MCTS-DPO view of Q(good) > Q(bad) at one node).
- `chosen_chain_id` / `rejected_chain_id` name one chain holding the step with that side's label
  (True / False); for the rejected side a chain whose first error it is, if any; ties go to the
  smallest chain id. The output does not depend
  on the order of the input rows except for the order of questions.

With a `keep` column (from `tasks.consensus`), only chains with `keep` True are used.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict

import polars as pl

from prefmill.errors import InputError
from prefmill.schemas.tables import STEP_PAIRS
from prefmill.schemas.validate import polars_schema


FIRST_ERROR = "first_error"
CONTRAST = "contrast"

OUTPUT_SCHEMA = polars_schema(STEP_PAIRS)

_NEEDED = ("chain_id", "prompt_id", "prompt", "completions", "labels", "values", "method")


def _candidates(members: list[dict], i: int) -> dict[str, dict]:
    """Next-step text -> {label, value, chains, first_error_chains} over the members with a labelled step i."""
    by_text: dict[str, dict] = {}
    for chain in members:
        label, value = chain["labels"][i], chain["values"][i]
        if label is None or value is None:
            continue
        entry = by_text.setdefault(chain["completions"][i], {"labels": [], "values": [], "chains": [], "first": []})
        entry["labels"].append(label)
        entry["values"].append(value)
        entry["chains"].append(chain)
        if chain.get("first_error_step") == i:
            entry["first"].append(chain)
    return {
        text: {
            "label": any(e["labels"]),
            "value": sum(e["values"]) / len(e["values"]),
            # a chain whose own label agrees with the text's label (any True chain for a good text)
            "chain": min((c for c, lab in zip(e["chains"], e["labels"]) if lab == any(e["labels"])),
                         key=lambda c: c["chain_id"]),
            "first": min(e["first"], key=lambda c: c["chain_id"]) if e["first"] else None,
        }
        for text, e in by_text.items()
    }


def _messages(prompt: list[dict], prefix: tuple[str, ...]) -> list[dict[str, str]]:
    messages = [{"role": m["role"], "content": m["content"]} for m in prompt]
    if prefix:
        messages.append({"role": "assistant", "content": "\n".join(prefix)})
    return messages


def _pair_id(prompt_id: str, prefix: tuple[str, ...], chosen: str, rejected: str) -> str:
    key = json.dumps([prompt_id, list(prefix), chosen, rejected], ensure_ascii=False)
    return f"{prompt_id}|s{len(prefix)}|{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _pairs_of_question(prompt_id: str, chains: list[dict], stats: dict) -> list[dict]:
    pairs = []
    # Walk the prefix tree: a node is (prefix, chains sharing it that have a step after it).
    stack: list[tuple[tuple[str, ...], list[dict]]] = [((), [c for c in chains if c["completions"]])]
    while stack:
        prefix, members = stack.pop()
        i = len(prefix)
        children: dict[str, list[dict]] = defaultdict(list)
        for chain in members:
            if len(chain["completions"]) > i + 1:
                children[chain["completions"][i]].append(chain)
        stack.extend(((*prefix, text), group) for text, group in children.items() if len(group) > 1)
        if len(members) < 2:
            continue
        if i and not any(c["labels"][i - 1] is True for c in members):  # Step-DPO needs a correct prefix
            stats["skipped_wrong_prefix"] += 1
            continue
        stats["skipped_null_steps"] += sum(c["labels"][i] is None or c["values"][i] is None for c in members)
        found = _candidates(members, i)
        good = [(t, c) for t, c in found.items() if c["label"]]
        bad = [(t, c) for t, c in found.items() if not c["label"]]
        for good_text, g in good:
            for bad_text, b in bad:
                if g["value"] <= b["value"]:
                    stats["skipped_value_order"] += 1
                    continue
                rejected_chain = b["first"] or b["chain"]
                pairs.append({
                    "pair_id": _pair_id(prompt_id, prefix, good_text, bad_text),
                    "prompt_id": prompt_id,
                    "prompt": _messages(g["chain"]["prompt"], prefix),
                    "chosen": [{"role": "assistant", "content": good_text}],
                    "rejected": [{"role": "assistant", "content": bad_text}],
                    "prefix_steps": i,
                    "chosen_chain_id": g["chain"]["chain_id"],
                    "rejected_chain_id": rejected_chain["chain_id"],
                    "chosen_value": g["value"],
                    "rejected_value": b["value"],
                    "margin": g["value"] - b["value"],
                    "kind": FIRST_ERROR if b["first"] is not None else CONTRAST,
                    "method": g["chain"]["method"],
                })
    pairs.sort(key=lambda p: (p["prefix_steps"], p["prompt"][-1]["content"] if p["prefix_steps"] else "",
                              -p["margin"], p["chosen"][0]["content"], p["rejected"][0]["content"]))
    return pairs


def step_pairs(chains: pl.DataFrame) -> tuple[pl.DataFrame, dict]:
    """Step-level preference pairs (see the module docstring for exactly which) and their stats.

    Input: the output of `tasks.mc_label` (or OmegaPRM), optionally with `keep` from `tasks.consensus`.
    Output columns: `OUTPUT_SCHEMA` (TRL conversational preference: `prompt` = the question's messages
    plus, after `i > 0` shared steps, an assistant message holding them joined by "\\n"; `chosen` /
    `rejected` = one assistant message with the next step), questions in input order.
    Stats: `questions`, `chains_used`, `chains_not_kept`, `pairs`, `pairs_first_error`,
    `pairs_contrast`, `pairs_by_prefix_steps` ({i: count}), `no_contrast` (questions with no pair),
    `skipped_null_steps` (chain steps with a null label/value at a shared prefix),
    `skipped_value_order` (True/False combinations whose values do not order them), `skipped_wrong_prefix`
    (shared prefixes whose last step no chain labels True).
    """
    if missing := [c for c in _NEEDED if c not in chains.columns]:
        raise InputError(f"step_pairs: the chains table lacks column(s) {missing}; it has {chains.columns}",
                         hint="pass the output of tasks.mc_label (chain_id, prompt_id, prompt, completions, labels, values, method)")
    if chains["chain_id"].n_unique() != chains.height:
        raise InputError("step_pairs: `chain_id` values repeat", hint="give every chain its own id")
    kept = chains.filter(pl.col("keep").fill_null(False)) if "keep" in chains.columns else chains
    stats: dict = {"questions": chains["prompt_id"].n_unique(), "chains_used": kept.height,
                   "chains_not_kept": chains.height - kept.height, "skipped_null_steps": 0, "skipped_value_order": 0,
                   "skipped_wrong_prefix": 0}
    columns = [*_NEEDED] + (["first_error_step"] if "first_error_step" in kept.columns else [])
    rows = []
    for chain in kept.select(columns).iter_rows(named=True):
        steps, labels, values = chain["completions"] or [], chain["labels"] or [], chain["values"] or []
        if not len(steps) == len(labels) == len(values):
            raise InputError(
                f"step_pairs: chain {chain['chain_id']!r} has {len(steps)} steps, {len(labels)} labels and {len(values)} values",
                hint="completions, labels and values must be aligned, one entry a step",
            )
        rows.append(chain)
    by_question: dict[str, list[dict]] = defaultdict(list)
    for pid in chains["prompt_id"].unique(maintain_order=True):
        by_question[pid] = []
    for chain in rows:
        by_question[chain["prompt_id"]].append(chain)
    pairs = []
    no_contrast = 0
    for pid, members in by_question.items():
        found = _pairs_of_question(pid, members, stats)
        no_contrast += not found
        pairs += found
    frame = pl.DataFrame(pairs, schema=OUTPUT_SCHEMA)
    by_prefix = frame["prefix_steps"].value_counts().sort("prefix_steps").iter_rows()
    stats.update({
        "pairs": frame.height,
        "pairs_first_error": int((frame["kind"] == FIRST_ERROR).sum()),
        "pairs_contrast": int((frame["kind"] == CONTRAST).sum()),
        "pairs_by_prefix_steps": {int(i): int(n) for i, n in by_prefix},
        "no_contrast": no_contrast,
    })
    return frame, stats


def merge_prefix(pairs: pl.DataFrame) -> pl.DataFrame:
    """The same pairs with the shared prefix moved from `prompt` into `chosen` and `rejected`.

    TRL renders a prompt ending in an assistant message and a chosen assistant message as two turns,
    so the step would follow an end-of-turn token. Here the prompt ends with the user turn and each side
    is one assistant turn "prefix\\nstep". For DPO the loss is the same as Step-DPO's: the prefix
    tokens are identical in both sides and come first, so their log-ratios cancel.
    """
    rows = []
    for row in pairs.iter_rows(named=True):
        prompt = row["prompt"]
        if row["prefix_steps"] and prompt and prompt[-1]["role"] == "assistant":
            head = prompt[-1]["content"] + "\n"
            row = {**row, "prompt": prompt[:-1],
                   "chosen": [{"role": "assistant", "content": head + row["chosen"][0]["content"]}],
                   "rejected": [{"role": "assistant", "content": head + row["rejected"][0]["content"]}]}
        rows.append(row)
    return pl.DataFrame(rows, schema=pairs.schema)
