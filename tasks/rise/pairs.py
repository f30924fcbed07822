"""RISE pairs: (original, kept edit) as preference pairs, mixed with the sampled pairs."""

from __future__ import annotations

import hashlib

import polars as pl

from prefmill.config import RiseConfig
from prefmill.schemas.tables import PAIRS
from prefmill.schemas.validate import polars_schema
from prefmill.tasks.preference.pairs import finish_pairs, pair_row, rank_curriculum
from prefmill.tasks.process.steps import SPAN
from prefmill.tasks.rise.edit_checks import changed_share

OVER_RATIO = "over_ratio"  # set when mixing with sampled pairs

DIFF = polars_schema(PAIRS)["edit_diff"]


def rise_pairs(edits: pl.DataFrame, *, votes: pl.DataFrame | None = None) -> pl.DataFrame:
    """(original, kept edit) pairs with strategy `rise`: chosen scores 1, rejected 0."""
    rows = []
    for e in edits.filter(pl.col("keep")).iter_rows(named=True):
        chosen = {"text": e["chosen_text"], "sample_id": e["sample_id"], "answer": e["answer"], "logprob": None,
                  "score": 1.0, "engine": e["engine"], "version": None}
        rejected = {"text": e["rejected_text"], "sample_id": e["edit_id"], "answer": e["rejected_answer"],
                    "logprob": None, "score": 0.0, "engine": e["edit_engine"], "version": None}
        row = pair_row(e, chosen, rejected, source=e["source"])
        rows.append(row | {"prompt": e["prompt"], "error_type": e["error_type"], "edited_step": e["step_index"],
                           "edit_span": e["edit_span"], "edit_diff": e["edit_diff"], "changed_share": e["changed_share"]})
    if not rows:
        return pl.DataFrame(schema={"prompt_id": pl.String, "keep": pl.Boolean, "strategy": pl.String})
    frame = pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.col("edited_step").cast(pl.Int32), pl.col("edit_span").cast(SPAN), pl.col("edit_diff").cast(DIFF)
    )
    return with_sides_share(finish_pairs(frame, votes=votes, strategy="rise"))


RISE_COLUMNS = ("error_type", "edited_step", "edit_span", "edit_diff", "changed_share", "sides_changed_share")


def with_sides_share(pairs: pl.DataFrame) -> pl.DataFrame:
    """`sides_changed_share` of every `rise` pair, measured between the texts it publishes (the whole
    solutions, the regenerated tail included); `changed_share` looks at the edited step only."""
    if not pairs.height or not {"strategy", "chosen", "rejected"} <= set(pairs.columns):
        return pairs
    shares = [changed_share(c[0]["content"], r[0]["content"]) if s == "rise" else None
              for s, c, r in pairs.select("strategy", "chosen", "rejected").iter_rows()]
    return pairs.with_columns(sides_changed_share=pl.Series(shares, dtype=pl.Float64))


def with_rise_columns(pairs: pl.DataFrame) -> pl.DataFrame:
    """`pairs` with the RISE columns, null where a run made no RISE pairs (the stages between do not
    carry `sides_changed_share`: it is measured here, on what is published)."""
    schema = polars_schema(PAIRS)
    pairs = with_sides_share(pairs)
    return pairs.with_columns(pl.lit(None, schema[c]).alias(c) for c in RISE_COLUMNS if c not in pairs.columns)


def mix_pairs(outcomes: pl.DataFrame, rise: pl.DataFrame, *, ratio: float | None) -> pl.DataFrame:
    """Sampled pair outcomes plus RISE pairs, at most `ratio` RISE pairs per kept sampled pair (the
    others `over_ratio`, picked by a hash of the pair id so the choice is stable). In the curriculum the
    RISE pairs, the hardest negatives whatever their margin, come after the sampled ones."""
    if not rise.height:
        return outcomes
    if ratio is not None:
        allowed = int(ratio * int(outcomes["keep"].sum()))
        ranked = sorted(rise["pair_id"], key=lambda pid: hashlib.sha256(pid.encode()).hexdigest())
        over = pl.col("pair_id").is_in(ranked[allowed:])
        rise = rise.with_columns(
            keep=pl.col("keep") & ~over,
            drop_reason=pl.when(over).then(pl.lit(OVER_RATIO)).otherwise(pl.col("drop_reason")),
        )
    return rank_curriculum(pl.concat([outcomes, rise], how="diagonal_relaxed"), last=pl.col("strategy") == "rise")


def mix(pairs: pl.DataFrame, edits: pl.DataFrame, votes: pl.DataFrame | None, *, cfg: RiseConfig) -> pl.DataFrame:
    """The sampled pair outcomes plus the pairs of the kept RISE edits, capped by `rise.ratio`."""
    return mix_pairs(pairs, rise_pairs(edits, votes=votes), ratio=cfg.ratio)
