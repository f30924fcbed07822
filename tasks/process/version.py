"""What a process-supervision version holds: `steps` (TRL stepwise supervision) of the chains labelled
on every step and kept by consensus, their `step_pairs` (Step-DPO), the samples, and the stats."""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa

from prefmill.schemas.tables import SCORED, STEP_PAIRS, STEPS
from prefmill.schemas.validate import conform
from prefmill.tasks.process.consensus import consensus_stats
from prefmill.tasks.process.step_pairs import merge_prefix, step_pairs
from prefmill.tasks.stats import sample_stats, step_stats


def process_version(
    samples: pl.DataFrame, prompts: pl.DataFrame, chains: pl.DataFrame, labelled: pl.DataFrame,
    *, rollout_cache: dict[str, int], consensus: bool = False,
) -> tuple[dict[str, pa.Table], dict[str, Any]]:
    """(tables by config name, stats); chains without a label on every step stay out of `steps`;
    `rollout_cache` (hits, misses, entries) goes into the steps stats; with `consensus`, the consensus
    filter's counts go into `stats.consensus`."""
    questions = prompts.select("prompt_id", "question")
    rows = labelled.join(questions, on="prompt_id", how="left", maintain_order="left")
    judged = consensus_stats(rows) if consensus else None
    if "keep" in rows.columns:  # consensus and balance mark what they drop
        rows = rows.filter(pl.col("keep"))
    complete = rows.filter(
        pl.col("labels").list.len().gt(0) & pl.col("labels").list.eval(pl.element().is_not_null()).list.all()
    )
    steps = complete.with_columns(prompt=pl.col("question"))
    if "judge_first_error" not in steps.columns:
        steps = steps.with_columns(judge_first_error=pl.lit(None, pl.Int32))
    pairs, pair_counts = step_pairs(complete)
    tables = {
        "samples": conform(samples, SCORED, where="samples", fill_nullable=True),
        "steps": conform(steps, STEPS, where="steps", fill_nullable=True),
        "step_pairs": conform(merge_prefix(pairs), STEP_PAIRS, where="step_pairs"),
    }
    stats: dict[str, Any] = {"samples": sample_stats(samples), "steps": step_stats(chains, rows, steps) | {"rollout_cache": rollout_cache}, "step_pairs": pair_counts}
    if judged is not None:
        stats["consensus"] = judged
    return tables, stats
