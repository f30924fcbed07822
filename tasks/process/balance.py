"""Balance: as many labelled chains with an error as without (OmegaPRM keeps its positive and negative
examples balanced). It runs last, after the consensus filter, so what is published stays balanced."""

from __future__ import annotations

import polars as pl

UNLABELLED = "unlabelled"  # a step without a label (engine failure, budget, unsolved question)
BALANCE = "balance"


def balance(rows: pl.DataFrame, *, seed: int) -> pl.DataFrame:
    """`rows` with `keep` and `drop_reason`: rows already dropped (by consensus) stay dropped; of the
    fully labelled rest the larger side (with / without a first error) is sampled down with `seed` to
    the smaller one's size. Nothing is removed."""
    keep = pl.col("keep") if "keep" in rows.columns else pl.lit(True)
    reason = pl.col("drop_reason") if "drop_reason" in rows.columns else pl.lit(None, pl.String)
    complete = pl.col("labels").list.len().gt(0) & pl.col("labels").list.eval(pl.element().is_not_null()).list.all()
    ids = rows.with_row_index("_i").with_columns(_keep=keep.fill_null(False), _reason=reason, _complete=complete)
    eligible = ids.filter(pl.col("_keep") & pl.col("_complete"))
    wrong = eligible.filter(pl.col("first_error_step").is_not_null())["_i"]
    right = eligible.filter(pl.col("first_error_step").is_null())["_i"]
    size = min(wrong.len(), right.len())
    kept = pl.concat([wrong.sample(size, seed=seed), right.sample(size, seed=seed)])
    chosen = pl.col("_i").is_in(kept.implode())
    return ids.with_columns(
        keep=chosen,
        drop_reason=pl.when(chosen).then(pl.lit(None, pl.String))
        .when(pl.col("_reason").is_not_null()).then(pl.col("_reason"))
        .when(pl.col("_complete").not_()).then(pl.lit(UNLABELLED))
        .otherwise(pl.lit(BALANCE)),
    ).drop("_i", "_keep", "_reason", "_complete")
