"""What a preference version holds: the scored samples, the kept pairs (sampled and RISE), the votes,
the RISE step pairs, each conformed to its schema, and the manifest stats of every stage that ran."""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa

from prefmill.config import PairsConfig
from prefmill.schemas.tables import PAIRS, RISE_STEPS, SCORED, VOTES
from prefmill.schemas.validate import conform
from prefmill.tasks.preference.pairs import sample_scores
from prefmill.tasks.rise.pairs import with_rise_columns
from prefmill.tasks.rise.steps import rise_step_stats, rise_steps
from prefmill.tasks.stats import decontamination_stats, pair_stats, rise_stats, sample_stats, vote_stats


def preference_version(
    samples: pl.DataFrame,
    pairs: pl.DataFrame,
    votes: pl.DataFrame | None,
    decontamination: pl.DataFrame | None,
    edits: pl.DataFrame | None,
    *,
    pairs_cfg: PairsConfig,
) -> tuple[dict[str, pa.Table], dict[str, Any]]:
    """(tables by config name, stats by stage); `pairs` are every candidate with `keep`/`drop_reason`."""
    scored = sample_scores(samples, cfg=pairs_cfg)
    kept = pairs.filter(pl.col("keep"))
    if pairs_cfg.in_curriculum_order:  # the file in training order (Curry-DPO: easy to hard), RISE pairs included
        kept = kept.sort("curriculum_rank", maintain_order=True)
    tables = {
        "samples": conform(scored, SCORED, where="samples", fill_nullable=True),
        "pairs": conform(with_rise_columns(kept), PAIRS, where="pairs"),
    }
    stats: dict[str, Any] = {"samples": sample_stats(scored), "pairs": pair_stats(pairs)}
    if votes is not None:
        tables["votes"] = conform(votes, VOTES, where="votes")
        stats["votes"] = vote_stats(votes)
    if edits is not None:  # RISE ran: its step pairs are published too, even when no edit was kept
        steps = rise_steps(edits)
        tables["rise_steps"] = conform(steps, RISE_STEPS, where="rise_steps")
        stats["rise"] = rise_stats(edits, pairs)
        stats["rise_steps"] = rise_step_stats(steps)
    if decontamination is not None:
        stats["decontamination"] = decontamination_stats(decontamination)
    return tables, stats
