"""What a preference version holds: the scored samples, the kept pairs (sampled and RISE), the votes,
each conformed to its schema, and the manifest stats of every stage that ran."""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa

from prefmill.config import PairsConfig
from prefmill.schemas.tables import PAIRS, SCORED, VOTES
from prefmill.schemas.validate import conform
from prefmill.tasks.preference.pairs import sample_scores
from prefmill.tasks.rise.pairs import with_rise_columns
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
    tables = {
        "samples": conform(scored, SCORED, where="samples", fill_nullable=True),
        "pairs": conform(with_rise_columns(pairs.filter(pl.col("keep"))), PAIRS, where="pairs"),
    }
    stats: dict[str, Any] = {"samples": sample_stats(scored), "pairs": pair_stats(pairs)}
    if votes is not None:
        tables["votes"] = conform(votes, VOTES, where="votes")
        stats["votes"] = vote_stats(votes)
    if edits is not None:
        stats["rise"] = rise_stats(edits, pairs)
    if decontamination is not None:
        stats["decontamination"] = decontamination_stats(decontamination)
    return tables, stats
