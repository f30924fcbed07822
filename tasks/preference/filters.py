"""Consistency filters on pairs: keep a preference only when the evidence agrees with itself.

- position swap (Fair Evaluators): a pairwise verdict counts only if A/B and B/A agree, and a pair
  with no verdict parsed in both orders is unverified;
- SCIR (Zhou et al. 2025, "Self-Consistency of the Internal Reward Models Improves Self-Rewarding
  Language Models"): different reward models must agree that chosen is better. Signals: the pointwise
  judge (chosen's rubric score above rejected's, both sides this run's judged samples), the pairwise
  judge (a swap-consistent preference for chosen), the verifier where a reference exists (chosen
  correct, rejected not). A pair is kept when at least `scir_min_agreement` of its available signals
  agree; a signal asked for but unparsed counts against it unless `scir_missing: ignore`; a pair with
  no signal to count is `scir_no_signal`. Differences from the paper: its internal reward models are
  the LLM-as-judge and the implicit DPO reward beta * log(pi / pi_ref) of the model being trained,
  made consistent by a loss during training; here, before training, we only select the pairs where
  the signals agree (its data selection step). The implicit DPO reward is not available: it needs
  the log-probabilities of both given responses under the policy and a reference model (prompt
  logprobs), which the engine contract does not offer; the verifier is a third signal instead;
- verifier vs judge: drop pairs where the judge prefers the side the verifier marked wrong;
- CREAM (tasks.preference.cream): the previous iteration's judge and this one rank the same
  responses; per prompt C = (tau + 1) / 2 becomes `weight` and `label_smoothing` (`cream: weight`)
  or drops the prompt's pairs below `cream_min_consistency` (`cream: drop`).

A filter never deletes rows: it sets `keep=False` and the first `drop_reason` that applies. Then
`curriculum_rank` is recomputed (dropped pairs last) and, with `pairs.curriculum`, rows sorted by it.
"""

from __future__ import annotations

import polars as pl

from prefmill.config import FiltersConfig, PairsConfig
from prefmill.tasks.preference.cream import (
    CONSISTENCY_COLUMNS,
    NO_PREVIOUS_ITERATION,
    NOT_SHARED,
    cream_consistency,
    kendall_tau,  # noqa: F401  (re-exported)
)
from prefmill.tasks.preference.pairs import rank_curriculum


SWAP_INCONSISTENT = "swap_inconsistent"
SWAP_UNVERIFIED = "swap_unverified"  # no judge sample gave a parsable verdict in both orders
SCIR_DISAGREEMENT = "scir_disagreement"
SCIR_NO_SIGNAL = "scir_no_signal"  # no reward signal to count (none available, or only missing ones ignored)
JUDGE_CONTRADICTS_VERIFIER = "judge_contradicts_verifier"
CREAM_INCONSISTENT = "cream_inconsistent"

AGREE, DISAGREE, MISSING = "agree", "disagree", "missing"  # a SCIR signal; null: not available
SIGNALS = ("scir_pointwise", "scir_pairwise", "scir_verifier")
_OPTIONAL = {"chosen_judge_score": pl.Float64, "rejected_judge_score": pl.Float64, "chosen_correct": pl.Boolean,
             "rejected_correct": pl.Boolean, "reference_answer": pl.String, "chosen_sample_id": pl.String,
             "rejected_sample_id": pl.String, "chosen_version": pl.String, "rejected_version": pl.String,
             "chosen_engine": pl.String, "rejected_engine": pl.String, "label_smoothing": pl.Float64}


def _drop(frame: pl.DataFrame, condition: pl.Expr, reason: str) -> pl.DataFrame:
    hit = pl.col("keep") & condition.fill_null(False)
    return frame.with_columns(
        drop_reason=pl.when(hit).then(pl.lit(reason)).otherwise(pl.col("drop_reason")),
        keep=pl.col("keep") & ~hit,
    )


def _signal(available: pl.Expr, present: pl.Expr, agrees: pl.Expr) -> pl.Expr:
    return (pl.when(~available.fill_null(False)).then(pl.lit(None, pl.String))
            .when(~present.fill_null(False)).then(pl.lit(MISSING))
            .when(agrees.fill_null(False)).then(pl.lit(AGREE)).otherwise(pl.lit(DISAGREE)))


def _this_run(side: str) -> pl.Expr:
    """A side that is one of this run's samples (not the reference, not a parent version's sample)."""
    return (pl.col(f"{side}_sample_id").is_not_null() & pl.col(f"{side}_version").is_null()
            & (pl.col(f"{side}_engine").fill_null("") != "reference"))


def scir_signals(frame: pl.DataFrame, *, pointwise: bool, pairwise: bool, missing: str) -> pl.DataFrame:
    """The three SCIR signals of every pair and `scir_agreement`, the share of the counted ones that agree."""
    frame = frame.with_columns(
        scir_pointwise=_signal(
            pl.lit(pointwise) & _this_run("chosen") & _this_run("rejected"),
            pl.col("chosen_judge_score").is_not_null() & pl.col("rejected_judge_score").is_not_null(),
            pl.col("chosen_judge_score") > pl.col("rejected_judge_score"),
        ),
        scir_pairwise=_signal(
            pl.lit(pairwise) & pl.col("_judged").fill_null(False), pl.col("swap_consistent").is_not_null(),
            pl.col("swap_consistent") & (pl.col("judge_prefers") == "chosen"),
        ),
        scir_verifier=_signal(
            pl.col("reference_answer").is_not_null() & pl.col("chosen_correct").is_not_null()
            & pl.col("rejected_correct").is_not_null(),
            pl.lit(True), pl.col("chosen_correct") & ~pl.col("rejected_correct"),
        ),
    )
    counted = (AGREE, DISAGREE) if missing == "ignore" else (AGREE, DISAGREE, MISSING)
    n_agree = pl.sum_horizontal((pl.col(s) == AGREE).fill_null(False).cast(pl.Int32) for s in SIGNALS)
    n_counted = pl.sum_horizontal(pl.col(s).is_in(counted).fill_null(False).cast(pl.Int32) for s in SIGNALS)
    return frame.with_columns(
        scir_agreement=pl.when(n_counted > 0).then(n_agree / n_counted).otherwise(pl.lit(None, pl.Float64))
    )


def apply_cream(
    frame: pl.DataFrame, consistency: pl.DataFrame | None, *, cfg: FiltersConfig, version: str | None
) -> pl.DataFrame:
    """CREAM columns; `weight = C`, `label_smoothing = 1 - C` (`weight`) or a drop below the threshold (`drop`).
    `version` is the previous iteration (null: there is none, and every row says so)."""
    if cfg.cream == "off":
        return frame.with_columns(pl.lit(None, dtype).alias(name) for name, dtype in CONSISTENCY_COLUMNS.items()
                                  if name != "prompt_id").with_columns(cream_version=pl.lit(None, pl.String))
    if version is None or consistency is None:
        consistency = pl.DataFrame(schema=CONSISTENCY_COLUMNS)
    judge = consistency["cream_judge"].drop_nulls()
    frame = frame.join(consistency, on="prompt_id", how="left", maintain_order="left").with_columns(
        cream_status=pl.col("cream_status").fill_null(NOT_SHARED if version is not None else NO_PREVIOUS_ITERATION),
        cream_judge=pl.lit(judge[0] if judge.len() else None, pl.String),
        cream_version=pl.lit(version, pl.String),
    )
    rate = pl.col("cream_consistency")
    if cfg.cream == "drop":
        return _drop(frame, rate < cfg.cream_min_consistency, CREAM_INCONSISTENT)
    return frame.with_columns(
        weight=pl.when(rate.is_null()).then(pl.col("weight")).otherwise(rate),
        label_smoothing=pl.when(rate.is_null()).then(pl.col("label_smoothing")).otherwise(1 - rate),
    )


def apply_filters(
    pairs: pl.DataFrame,
    *,
    cfg: FiltersConfig,
    judged: pl.DataFrame | None = None,
    pointwise: bool = False,
    consistency: pl.DataFrame | None = None,
    cream_version: str | None = None,
    curriculum: bool = False,
) -> pl.DataFrame:
    """`judged`: pairwise judge rows (pair_id, judge_prefers, prefers_chosen_share, swap_consistent);
    `pointwise`: the sides carry this run's pointwise judge scores; `consistency`: CREAM rows per prompt
    (`cream.cream_consistency`) against the previous iteration `cream_version`."""
    frame = pairs.with_columns(pl.lit(None, t).alias(c) for c, t in _OPTIONAL.items() if c not in pairs.columns)
    frame = frame.with_columns(label_smoothing=pl.col("label_smoothing").fill_null(0.0))
    if judged is not None:
        frame = frame.join(
            judged.select("pair_id", "judge_prefers", pl.col("prefers_chosen_share").alias("judge_agreement"),
                          "swap_consistent", _judged=pl.lit(True)),
            on="pair_id", how="left", maintain_order="left",
        )
    else:
        frame = frame.with_columns(
            judge_prefers=pl.lit(None, pl.String), judge_agreement=pl.lit(None, pl.Float64),
            swap_consistent=pl.lit(None, pl.Boolean), _judged=pl.lit(None, pl.Boolean),
        )
    frame = scir_signals(frame, pointwise=pointwise, pairwise=judged is not None, missing=cfg.scir_missing)
    if judged is not None and cfg.require_swap_consistent:
        frame = _drop(frame, pl.col("swap_consistent").not_(), SWAP_INCONSISTENT)
        frame = _drop(frame, pl.col("swap_consistent").is_null(), SWAP_UNVERIFIED)
    if cfg.scir_min_agreement is not None:
        frame = _drop(frame, pl.col("scir_agreement").is_null(), SCIR_NO_SIGNAL)
        frame = _drop(frame, pl.col("scir_agreement") < cfg.scir_min_agreement, SCIR_DISAGREEMENT)
    if judged is not None and cfg.verifier_judge_agreement:
        verifier_says = (pl.col("chosen_score") > pl.col("rejected_score"))
        frame = _drop(frame, verifier_says & (pl.col("judge_prefers") == "rejected"), JUDGE_CONTRADICTS_VERIFIER)
    frame = apply_cream(frame.drop("_judged"), consistency, cfg=cfg, version=cream_version)
    ranked = rank_curriculum(frame)
    return ranked.sort("curriculum_rank") if curriculum else ranked


def filter_pairs(
    pairs: pl.DataFrame,
    verdicts: pl.DataFrame | None,
    samples: pl.DataFrame,
    cream_current: pl.DataFrame | None,
    cream_previous: pl.DataFrame | None,
    *,
    cfg: FiltersConfig,
    pairs_cfg: PairsConfig,
    cream_version: str | None = None,
) -> pl.DataFrame:
    """The pair candidates through every filter: swap consistency (`verdicts` of the pairwise judge),
    SCIR across the reward signals, CREAM (`cream_current` / `cream_previous`: both judges' verdicts
    on this run's responses of the prompts shared with the previous iteration `cream_version`)."""
    consistency = None
    if cfg.cream != "off" and cream_version is not None and cream_current is not None and cream_previous is not None:
        consistency = cream_consistency(samples, cream_current, cream_previous)
    return apply_filters(pairs, cfg=cfg, judged=verdicts, pointwise="judge_score" in samples.columns,
                         consistency=consistency, cream_version=cream_version,
                         curriculum=pairs_cfg.in_curriculum_order)
