"""CREAM (Wang et al. 2024, "CREAM: Consistency Regularized Self-Rewarding Language Models"): how far
to trust this iteration's judge, measured by how it ranks the SAME responses as the previous
iteration's judge.

For the prompts this iteration shares with the previous one, both judges score THIS iteration's
responses (the pointwise rubric, the same requests: prompt, rubric, judge samples, seeds); per prompt,
Kendall's tau between the two rankings; the consistency rate C = (tau + 1) / 2. The paper trains on
C as a soft label, loss = C * DPO(chosen > rejected) + (1 - C) * DPO(rejected > chosen), which is cDPO's
label smoothing with epsilon = 1 - C; filters turns C into `weight` and `label_smoothing` per pair,
or drops pairs below a threshold.

Trainers: TRL's `DPOConfig(loss_type="sigmoid", label_smoothing=eps)` applies one epsilon to every
pair; give it the mean `label_smoothing` of the published pairs (the paper's "average" variant; the
manifest's `stats.pairs.cream.mean_label_smoothing`). Per pair (the paper's default) TRL reads no
column: keep `label_smoothing` in the dataset (`remove_unused_columns=False`, a collator passing it)
and compute the loss above with each pair's epsilon in a `DPOTrainer` subclass, or multiply each pair's
loss by `weight` (= C) to down-weight instead of smoothing.

Differences from the paper, and why:
- the rankings are the pointwise judge's mean rubric scores, not the pair score blended with the
  verifier: the verifier is the same in every iteration and would make any two judges look consistent;
- tau-b over the responses both judges scored: the paper's code breaks ties by position (ordinal
  ranks), which counts two tied responses as agreed; where either judge ties every response there is
  no tau (`undefined`, the pairs left alone); an unscored response is left out (the paper skips the
  prompt: small judges leave many unparsed);
- the previous judge gets this run's judge config, so the two rankings differ by the model only;
- "previous iteration" is the latest version made by another model (engine fingerprint), found by
  the flow; `drop` (a hard filter) is ours.
"""

from __future__ import annotations

import math

import polars as pl

from prefmill.config import JudgeConfig
from prefmill.engines.base import Engine
from prefmill.tasks.preference.judge import POINTWISE_COLUMNS, judge_pointwise

SCORED = "scored"  # both judges ranked the prompt's responses: C is set
UNDEFINED = "undefined"  # fewer than two responses scored by both, or a judge tied them all
SAME_JUDGE = "same_judge"  # the previous iteration's judge is this one: the ranking agrees by construction
NOT_SHARED = "not_shared"  # the previous iteration had no sample of this prompt
NO_PREVIOUS_ITERATION = "no_previous_iteration"  # no version made by another model

CONSISTENCY_COLUMNS = {"prompt_id": pl.String, "cream_tau": pl.Float64, "cream_consistency": pl.Float64,
                       "cream_status": pl.String, "cream_judge": pl.String}


def kendall_tau(xs: list[float], ys: list[float]) -> float | None:
    """Kendall's tau-b (scipy's default): (concordant - discordant) / sqrt(pairs untied in xs * pairs
    untied in ys); None with fewer than two items or when either side ties them all."""
    concordant = discordant = untied_x = untied_y = 0
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            dx, dy = xs[i] - xs[j], ys[i] - ys[j]
            untied_x += dx != 0
            untied_y += dy != 0
            concordant += dx * dy > 0
            discordant += dx * dy < 0
    if not untied_x or not untied_y:
        return None
    return (concordant - discordant) / math.sqrt(untied_x * untied_y)


def shared_responses(samples: pl.DataFrame, previous_samples: pl.DataFrame) -> pl.DataFrame:
    """This run's judgeable samples (no engine error, not empty) of prompts the previous iteration also sampled."""
    shared = previous_samples["prompt_id"].unique()
    return samples.filter(
        pl.col("prompt_id").is_in(shared) & pl.col("error").is_null()
        & (pl.col("completion").str.strip_chars() != "")
    )


def score_shared_responses(
    samples: pl.DataFrame,
    previous_samples: pl.DataFrame,
    *,
    previous_judge: Engine,
    current_judge: Engine,
    cfg: JudgeConfig,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(current judge's, previous judge's) pointwise verdicts on the same responses: this iteration's
    samples of the shared prompts; one batched call per judge (none when nothing is shared). The
    current judge's requests are those judge-pointwise sent (when it ran), so the rollout cache serves them."""
    shared = shared_responses(samples, previous_samples)
    if not shared.height:
        empty = pl.DataFrame(schema=POINTWISE_COLUMNS)
        return empty, empty
    return judge_pointwise(shared, engine=current_judge, cfg=cfg), judge_pointwise(shared, engine=previous_judge, cfg=cfg)


def cream_consistency(samples: pl.DataFrame, current: pl.DataFrame, previous: pl.DataFrame) -> pl.DataFrame:
    """One row per shared prompt (in sample order): tau-b between the two judges' scores of its
    responses, C = (tau + 1) / 2, a status (`scored`, `undefined`, `same_judge`), the previous judge."""
    joined = (
        samples.select("sample_id", "prompt_id")
        .join(current.select("sample_id", now="judge_score", now_judge="judge_engine"), on="sample_id")
        .join(previous.select("sample_id", before="judge_score", judge="judge_engine"), on="sample_id")
    )
    rows = []
    for (prompt_id,), group in joined.group_by("prompt_id", maintain_order=True):
        judge, now_judge = group["judge"][0], group["now_judge"][0]
        scored = group.filter(pl.col("now").is_not_null() & pl.col("before").is_not_null())
        tau = None if judge == now_judge else kendall_tau(scored["now"].to_list(), scored["before"].to_list())
        status = SAME_JUDGE if judge == now_judge else UNDEFINED if tau is None else SCORED
        rows.append({"prompt_id": prompt_id, "cream_tau": tau, "cream_consistency": None if tau is None else (tau + 1) / 2,
                     "cream_status": status, "cream_judge": judge})
    return pl.DataFrame(rows, schema=CONSISTENCY_COLUMNS)
