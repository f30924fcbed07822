"""Per-version statistics for the manifest, `prefmill show` and the run's Prefect artifacts."""

from __future__ import annotations

from typing import Any

import polars as pl


def _counts(column: pl.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in column.drop_nulls().value_counts(sort=True).iter_rows()}


def sample_stats(verified: pl.DataFrame) -> dict[str, Any]:
    per_prompt = verified.group_by("prompt_id").agg(pl.col("correct").any().alias("any_correct"))
    return {
        "samples": verified.height,
        "prompts": per_prompt.height,
        "correct": int(verified["correct"].sum()),
        "accuracy": round(float(verified["correct"].mean() or 0.0), 4),
        "pass_at_n": round(float(per_prompt["any_correct"].mean() or 0.0), 4),
        "mean_tokens": round(float(verified["num_tokens"].mean() or 0.0), 1),
        "finish_reason": _counts(verified["finish_reason"]),
        "verify_error": _counts(verified["verify_error"]),
        "engine_failures": int(verified["error"].is_not_null().sum()),
    }


def pair_stats(outcomes: pl.DataFrame) -> dict[str, Any]:
    kept = outcomes.filter(pl.col("keep"))
    return {
        "pairs": kept.height,
        "dropped": _counts(outcomes["drop_reason"]),
        "chosen_source": _counts(kept["chosen_source"]),
        "strategy": _counts(kept["strategy"]),
    }
