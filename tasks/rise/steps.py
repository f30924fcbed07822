"""RISE step pairs: each kept edit as the step-level pair RISE trains on ("Subtle Errors Matter", Xu
et al. 2024, in Step-DPO's format, as kaishxu/RISE): from the same correct steps, the original step
against the edited one, and nothing after it. The whole-solution `rise` pairs (tasks.rise.pairs) also
differ in the tail the model regenerated after the edit; these differ only in the edited words.

Each side is one assistant message "prefix + step" after the question's messages (the convention of
schemas.tables.RISE_STEPS and tasks.process.step_pairs.merge_prefix: TRL renders the step right after
the prefix, not after an end-of-turn token).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from prefmill.schemas.tables import RISE_STEPS
from prefmill.schemas.validate import polars_schema
from prefmill.tasks.rise.edit_checks import changed_share, edit_spans
from prefmill.tasks.rise.plan import editable_steps

OUTPUT_SCHEMA = polars_schema(RISE_STEPS)


def _prefix(edit: dict[str, Any]) -> str:
    """The chosen solution's text before the edited step: the step spans are recomputed as the planner
    made them (tasks.rise.plan.editable_steps), and must give back the step that was edited."""
    text, k = edit["chosen_text"], edit["step_index"]
    steps = editable_steps(text)
    if not 0 <= k < len(steps) or text[slice(*steps[k])] != edit["original_step"]:
        raise ValueError(f"rise steps: edit {edit['edit_id']!r}: step {k} of its solution is not its original step")
    return text[: steps[k][0]]


def rise_steps(edits: pl.DataFrame) -> pl.DataFrame:
    """One step pair per kept edit (of `tasks.rise.inject`), in the edits' order; columns: RISE_STEPS."""
    rows = []
    for e in edits.filter(pl.col("keep")).iter_rows(named=True):
        prefix = _prefix(e)
        chosen, rejected = prefix + e["original_step"], prefix + e["edited_step"]
        span_chosen, span_rejected = edit_spans(chosen, rejected)
        rows.append({
            "pair_id": e["edit_id"], "prompt_id": e["prompt_id"],
            "prompt": [{"role": m["role"], "content": m["content"]} for m in e["prompt"]],
            "prefix": prefix,
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
            "error_type": e["error_type"], "edited_step": e["step_index"],
            "edit_span_chosen": span_chosen, "edit_span_rejected": span_rejected,
            "changed_share": changed_share(chosen, rejected),
            "editor": e["editor"], "chosen_sample_id": e["sample_id"], "source": e["source"],
        })
    return pl.DataFrame(rows, schema=OUTPUT_SCHEMA)


def rise_step_stats(steps: pl.DataFrame) -> dict[str, Any]:
    """The manifest's `stats.rise_steps`: rows, and rows per error type and per editor."""
    def counts(column: str) -> dict[str, int]:
        return {k: int(n) for k, n in steps[column].value_counts().sort(column).iter_rows()}

    return {"rows": steps.height, "by_error_type": counts("error_type"), "by_editor": counts("editor")}
