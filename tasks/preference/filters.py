"""Consistency filters on pairs: keep a preference only when the evidence agrees with itself.

- position swap (Fair Evaluators): a pairwise verdict counts only if A/B and B/A agree, and a pair
  with no verdict parsed in both orders is unverified;
- SCIR: at least a share of judge verdicts must prefer the chosen side;
- verifier vs judge: drop pairs where the judge prefers the side the verifier marked wrong;
- CREAM: rank-correlate this version's scores with the parent version's on the same prompts'
  answers (Kendall tau); down-weight (weight = (1 + tau) / 2) or drop inconsistent prompts.

A filter never deletes rows: it sets `keep=False` and the first `drop_reason` that applies.
"""

from __future__ import annotations

import polars as pl

from prefmill.config import FiltersConfig, PairsConfig
from prefmill.tasks.preference.pairs import sample_scores


SWAP_INCONSISTENT = "swap_inconsistent"
SWAP_UNVERIFIED = "swap_unverified"  # no judge sample gave a parsable verdict in both orders
SCIR_DISAGREEMENT = "scir_disagreement"
JUDGE_CONTRADICTS_VERIFIER = "judge_contradicts_verifier"
CREAM_INCONSISTENT = "cream_inconsistent"


def kendall_tau(xs: list[float], ys: list[float]) -> float | None:
    """Kendall's tau-a over paired scores; None with fewer than two items or no untied pair."""
    concordant = discordant = 0
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            s = (xs[i] - xs[j]) * (ys[i] - ys[j])
            concordant += s > 0
            discordant += s < 0
    total = concordant + discordant
    return (concordant - discordant) / total if total else None


def cream_consistency(samples: pl.DataFrame, parent_samples: pl.DataFrame) -> pl.DataFrame:
    """Per prompt: tau between this and the parent version's mean score of each shared final answer.

    The two versions sampled different texts, so they are compared on what they share: the answers.
    """
    def answer_scores(frame: pl.DataFrame) -> pl.DataFrame:
        return (
            frame.filter(pl.col("extracted").is_not_null())
            .group_by("prompt_id", "extracted")
            .agg(pl.col("score").mean())
        )

    joined = answer_scores(samples).join(answer_scores(parent_samples), on=["prompt_id", "extracted"], suffix="_parent")
    rows = [
        {"prompt_id": pid, "cream_consistency": kendall_tau(g["score"].to_list(), g["score_parent"].to_list())}
        for (pid,), g in joined.group_by("prompt_id", maintain_order=True)
    ]
    return pl.DataFrame(rows, schema={"prompt_id": pl.String, "cream_consistency": pl.Float64})


def _drop(frame: pl.DataFrame, condition: pl.Expr, reason: str) -> pl.DataFrame:
    hit = pl.col("keep") & condition.fill_null(False)
    return frame.with_columns(
        drop_reason=pl.when(hit).then(pl.lit(reason)).otherwise(pl.col("drop_reason")),
        keep=pl.col("keep") & ~hit,
    )


def apply_filters(
    pairs: pl.DataFrame,
    *,
    cfg: FiltersConfig,
    judged: pl.DataFrame | None = None,
    consistency: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """`judged`: pairwise judge rows (pair_id, judge_prefers, prefers_chosen_share, swap_consistent);
    `consistency`: CREAM rows (prompt_id, cream_consistency)."""
    frame = pairs
    if judged is not None:
        frame = frame.join(
            judged.select("pair_id", "judge_prefers", pl.col("prefers_chosen_share").alias("judge_agreement"), "swap_consistent"),
            on="pair_id", how="left", maintain_order="left",
        )
        if cfg.require_swap_consistent:
            frame = _drop(frame, pl.col("swap_consistent").not_(), SWAP_INCONSISTENT)
            frame = _drop(frame, pl.col("swap_consistent").is_null(), SWAP_UNVERIFIED)
        if cfg.scir_min_agreement is not None:
            frame = _drop(frame, pl.col("judge_agreement") < cfg.scir_min_agreement, SCIR_DISAGREEMENT)
        if cfg.verifier_judge_agreement:
            verifier_says = (pl.col("chosen_score") > pl.col("rejected_score"))
            frame = _drop(frame, verifier_says & (pl.col("judge_prefers") == "rejected"), JUDGE_CONTRADICTS_VERIFIER)
    else:
        frame = frame.with_columns(
            judge_prefers=pl.lit(None, pl.String), judge_agreement=pl.lit(None, pl.Float64),
            swap_consistent=pl.lit(None, pl.Boolean),
        )
    if consistency is not None and cfg.cream != "off":
        frame = frame.join(consistency, on="prompt_id", how="left", maintain_order="left")
        tau = pl.col("cream_consistency")
        if cfg.cream == "drop":
            frame = _drop(frame, tau < cfg.cream_min_consistency, CREAM_INCONSISTENT)
        else:
            frame = frame.with_columns(weight=pl.when(tau.is_null()).then(pl.col("weight")).otherwise((1 + tau) / 2))
    else:
        frame = frame.with_columns(cream_consistency=pl.lit(None, pl.Float64))
    return frame


def filter_pairs(
    pairs: pl.DataFrame,
    verdicts: pl.DataFrame | None,
    samples: pl.DataFrame,
    parent_samples: pl.DataFrame | None,
    *,
    cfg: FiltersConfig,
    pairs_cfg: PairsConfig,
) -> pl.DataFrame:
    """The pair candidates through every filter: swap consistency and SCIR (`verdicts` of the pairwise
    judge), CREAM (this version's sample scores ranked against the parent version's)."""
    consistency = None
    if parent_samples is not None and cfg.cream != "off":
        consistency = cream_consistency(sample_scores(samples, cfg=pairs_cfg), sample_scores(parent_samples, cfg=pairs_cfg))
    return apply_filters(pairs, cfg=cfg, judged=verdicts, consistency=consistency)
