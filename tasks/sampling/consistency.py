"""Self-consistency: vote over a prompt's n samples by final-answer equivalence (Wang et al. 2023).

Answers are grouped by math-verify equivalence (18, 18.0 and 36/2 are one class), not by string.
Two votes per prompt: the plain majority and a logprob-weighted one, each sample weighing
exp(mean token logprob), i.e. the geometric-mean token probability. A prompt without a reference
gets its label from the vote, with the vote share as confidence.
"""

from __future__ import annotations

import math

import polars as pl

from prefmill.config import VerifyConfig, VoteConfig
from prefmill.answers import answers_match
from prefmill.schemas.tables import VOTES
from prefmill.schemas.validate import polars_schema


VOTE_COLUMNS = polars_schema(VOTES)


def answer_classes(answers: list[str | None], *, timeout_seconds: int = 5) -> list[int | None]:
    """Class index per answer (None stays None); classes numbered by first appearance."""
    representatives: list[str] = []
    by_string: dict[str, int] = {}
    out: list[int | None] = []
    for answer in answers:
        if answer is None:
            out.append(None)
            continue
        if answer not in by_string:
            match = next(
                (i for i, rep in enumerate(representatives) if answers_match(rep, answer, timeout_seconds=timeout_seconds)),
                None,
            )
            if match is None:
                representatives.append(answer)
                match = len(representatives) - 1
            by_string[answer] = match
        out.append(by_string[answer])
    return out


def _winner(scores: dict[int, float]) -> int:
    """Highest score; ties go to the class seen first (lowest index), so votes are deterministic."""
    return min(scores, key=lambda c: (-scores[c], c))


def difficulty(rate: float | None, *, cfg: VoteConfig) -> str | None:
    if rate is None:
        return None
    if rate == 0:
        return "unsolved"
    if rate >= cfg.easy_at:
        return "easy"
    return "medium" if rate >= cfg.hard_below else "hard"


def vote(
    verified: pl.DataFrame, *, cfg: VoteConfig, verify_cfg: VerifyConfig | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Returns (samples with `answer_class`, `in_majority`, `class_share`; one vote row per prompt).

    Samples of prompts without a reference (`verify_error == "no_reference"`) get `correct` from the
    vote: true when they fall in the majority class.
    """
    sample_rows, vote_rows = [], []
    for (pid,), group in verified.group_by("prompt_id", maintain_order=True):
        answers = group["extracted"].to_list()
        classes = answer_classes(answers, timeout_seconds=(verify_cfg or VerifyConfig()).timeout_seconds)
        counts: dict[int, float] = {}
        weights: dict[int, float] = {}
        for cls, logprob in zip(classes, group["mean_logprob"]):
            if cls is None:
                continue
            counts[cls] = counts.get(cls, 0) + 1
            weights[cls] = weights.get(cls, 0.0) + (math.exp(logprob) if logprob is not None else 0.0)
        n = group.height
        has_reference = group["reference_answer"].is_not_null().any()
        pass_rate = float(group["correct"].mean()) if has_reference else None
        # Majority by count; equal counts go to the heavier class, then to the class seen first.
        majority = min(counts, key=lambda c: (-counts[c], -weights[c], c)) if counts else None
        weighted = _winner(weights) if counts else None
        share = counts[majority] / n if majority is not None else 0.0
        total_weight = sum(weights.values())
        vote_rows.append(
            {
                "prompt_id": pid,
                "n_samples": n,
                "n_answered": sum(c is not None for c in classes),
                "n_classes": len(counts),
                "majority_answer": answers[classes.index(majority)] if majority is not None else None,
                "vote_share": share,
                "weighted_answer": answers[classes.index(weighted)] if weighted is not None else None,
                "weighted_share": weights[weighted] / total_weight if weighted is not None and total_weight else 0.0,
                "pass_rate": pass_rate,
                "label_source": "reference" if has_reference else "vote",
                "label_confidence": 1.0 if has_reference else share,
                "difficulty": difficulty(pass_rate if has_reference else share, cfg=cfg),
            }
        )
        sample_rows.append(
            group.with_columns(
                pl.Series("answer_class", classes, dtype=pl.Int32),
                pl.Series("in_majority", [c is not None and c == majority for c in classes], dtype=pl.Boolean),
                pl.Series("class_share", [counts[c] / n if c is not None else 0.0 for c in classes], dtype=pl.Float64),
            )
        )
    samples = pl.concat(sample_rows) if sample_rows else verified.with_columns(
        answer_class=pl.lit(None, pl.Int32), in_majority=pl.lit(False), class_share=pl.lit(0.0)
    )
    samples = samples.with_columns(
        correct=pl.when(pl.col("verify_error") == "no_reference").then(pl.col("in_majority")).otherwise(pl.col("correct"))
    )
    return samples, pl.DataFrame(vote_rows, schema=VOTE_COLUMNS)
