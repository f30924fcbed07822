"""Pairs: turn scored samples into preference pairs by a strategy chosen in the recipe.

A sample's score is in [0, 1]: the verifier's verdict (1 correct, 0 not), blended with the pointwise
judge's rubric score when judging is on (`pairs.judge_weight`). Strategies:

- `verified_vs_incorrect`: the correct sample the model was surest of vs the most confident
  incorrect one (a hard negative); the reference stands in when no sample is correct.
- `best_worst`: highest vs lowest score (UltraFeedback / Self-Rewarding style).
- `all_ranked`: every (better, worse) pair with enough margin, widest first: more pairs than
  Curry-DPO makes (a middle response is chosen against worse ones too).
- `curry`: Curry-DPO (Pattnaik et al. 2024): the best response against each lower-ranked one,
  R1>R4, R1>R3, R1>R2 for R1>R2>R3>R4, easy (wide margin) to hard. Differences from the paper: the
  ranking is our score (verifier + judge), not GPT-4 ratings; a response tied with the best makes
  no pair; and `curriculum_rank` is one order over all prompts by margin, where the paper trains
  in rounds (the k-th easiest pair of every prompt, then the next, the reference model updated
  between): `row_number() over (partition by prompt_id order by curriculum_rank)` gives a pair's
  round, if a trainer wants them.
- `spin`: reference solution vs the model's own sample (SPIN).
- `anchored`: Temporal Self-Rewarding's Anchored Rejection (Wang et al. 2025): the best current
  sample vs the worst output of the lineage's FIRST model (the flow passes the first version's
  samples). Future-Guided Chosen (`pairs.future_version`): the flow passes the samples a newer model
  (the temporary future model) published on the same prompts, re-scored by this run's judge (or,
  with the judge off, by the verifier alone, as this run's are); where the best of them scores
  strictly higher than this run's best it is chosen instead (`chosen_source="future"`), as the
  paper replaces chosen only when the future does better. Differences: published samples of the
  initial and future models on shared prompts stand in for fresh generations of them, and the
  anchors keep the scores published with them (not re-judged).

`pairs.curriculum` (on by default for `curry`) returns the rows sorted by `curriculum_rank`, so the
published file is in training order. Every prompt yields rows; those without a pair keep
`keep=False` and a `drop_reason`.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from prefmill.config import PairsConfig
from prefmill.schemas.tables import PAIR_CANDIDATES
from prefmill.schemas.validate import polars_schema
from prefmill.tasks.solution_text import without_annotations


NO_INCORRECT_SAMPLE = "no_incorrect_sample"
NO_CORRECT_SAMPLE = "no_correct_sample"
NO_MARGIN = "no_margin"
NO_REFERENCE = "no_reference"
NO_PARENT_SAMPLE = "no_parent_sample"
NO_USABLE_SAMPLE = "no_usable_sample"

def reference_as_solution(reference: str) -> str:
    """A GSM8K reference without its calculator annotations (`<<48/2=24>>`), as a model would write it."""
    return without_annotations(reference).strip()


def sample_scores(samples: pl.DataFrame, *, cfg: PairsConfig) -> pl.DataFrame:
    """Add `score` in [0, 1]: verifier verdict, blended with the judge's 1-10 score when present."""
    verdict = pl.col("correct").cast(pl.Float64)
    if "judge_score" not in samples.columns:
        return samples.with_columns(score=verdict)
    judged = (pl.col("judge_score") - 1) / 9
    return samples.with_columns(
        score=pl.when(pl.col("judge_score").is_null())
        .then(verdict)
        .otherwise((1 - cfg.judge_weight) * verdict + cfg.judge_weight * judged)
    )


def _side(row: dict[str, Any] | None, version: str | None) -> dict[str, Any]:
    """A pair side; `correct` and `judge_score` are what SCIR (filters) compares."""
    if row is None:
        return {"text": None, "sample_id": None, "answer": None, "logprob": None, "score": None,
                "engine": None, "version": None, "correct": None, "judge_score": None}
    return {"text": row["completion"], "sample_id": row["sample_id"], "answer": row["extracted"],
            "logprob": row["mean_logprob"], "score": row["score"], "engine": row["engine"], "version": version,
            "correct": row["correct"], "judge_score": row.get("judge_score")}


def _reference_side(prompt: dict[str, Any]) -> dict[str, Any]:
    return {"text": reference_as_solution(prompt["reference"]), "sample_id": None,
            "answer": prompt["reference_answer"], "logprob": None, "score": 1.0, "engine": "reference",
            "version": None, "correct": True, "judge_score": None}


def _rank(rows: list[dict], *, best: bool) -> list[dict]:
    """By score (best or worst first), then by confidence (higher mean logprob first), then index."""
    sign = -1 if best else 1
    return sorted(rows, key=lambda r: (sign * r["score"], -(r["mean_logprob"] or float("-inf")), r["sample_index"]))


def pair_row(prompt, chosen, rejected, *, source: str, drop: str | None = None) -> dict[str, Any]:
    """One pair: `prompt` gives prompt_id and reference_answer, the sides are `_side`-shaped dicts."""
    margin = None
    if chosen["score"] is not None and rejected["score"] is not None:
        margin = round(chosen["score"] - rejected["score"], 6)
    return {"prompt_id": prompt["prompt_id"], "reference_answer": prompt["reference_answer"],
            "keep": drop is None, "drop_reason": drop, "chosen_source": source,
            **{f"chosen_{k}": v for k, v in chosen.items()}, **{f"rejected_{k}": v for k, v in rejected.items()},
            "margin": margin}


def _dropped(prompt, reason: str) -> dict[str, Any]:
    return pair_row(prompt, _side(None, None), _side(None, None), source=None, drop=reason)


def _prompt_pairs(prompt, rows, parent_rows, future_rows, *, cfg: PairsConfig, version: str | None,
                  parent: str | None, future: str | None):
    usable = [r for r in rows if r["error"] is None and r["completion"].strip()]
    reference = _reference_side(prompt) if prompt["reference"] is not None and cfg.reference_as_chosen else None
    strategy = cfg.strategy
    if strategy == "spin":
        if prompt["reference"] is None:
            return [_dropped(prompt, NO_REFERENCE)]
        if not usable:
            return [_dropped(prompt, NO_USABLE_SAMPLE)]
        own = sorted(usable, key=lambda r: (-(r["mean_logprob"] or float("-inf")), r["sample_index"]))[0]
        return [pair_row(prompt, _reference_side(prompt), _side(own, version), source="reference")]
    if strategy == "anchored":
        anchors = [r for r in parent_rows if r["error"] is None and r["completion"].strip()]
        if not anchors:
            return [_dropped(prompt, NO_PARENT_SAMPLE)]
        best = _rank(usable, best=True)[0] if usable else None
        chosen = _side(best, version) if best is not None and best["score"] > 0 else reference
        ahead = _rank([r for r in future_rows if r["error"] is None and r["completion"].strip()], best=True)[:1]
        if ahead and ahead[0]["score"] > 0 and (chosen is None or ahead[0]["score"] > chosen["score"]):
            chosen = _side(ahead[0], future)
            return [_margin_checked(prompt, chosen, _side(_rank(anchors, best=False)[0], parent), cfg=cfg, source="future")]
        if chosen is None:
            return [_dropped(prompt, NO_CORRECT_SAMPLE)]
        worst = _side(_rank(anchors, best=False)[0], parent)
        return [_margin_checked(prompt, chosen, worst, cfg=cfg)]
    if not usable:
        return [_dropped(prompt, NO_USABLE_SAMPLE)]
    if strategy == "verified_vs_incorrect":
        correct = [r for r in usable if r["correct"]]
        incorrect = [r for r in usable if not r["correct"]]
        if not incorrect:
            return [_dropped(prompt, NO_INCORRECT_SAMPLE)]
        chosen = _side(_rank(correct, best=True)[0], version) if correct else reference
        if chosen is None:
            return [_dropped(prompt, NO_CORRECT_SAMPLE)]
        confident = cfg.rejected == "most_confident"
        rejected = sorted(incorrect, key=lambda r: ((-1 if confident else 1) * (r["mean_logprob"] or float("-inf")), r["sample_index"]))[0]
        return [pair_row(prompt, chosen, _side(rejected, version), source="sample" if correct else "reference")]
    ranked = _rank(usable, best=True)
    if strategy == "best_worst":
        chosen = _side(ranked[0], version)
        if chosen["score"] == 0 and reference is not None:
            chosen = reference
        return [_margin_checked(prompt, chosen, _side(_rank(usable, best=False)[0], version), cfg=cfg)]
    if strategy == "curry":  # the best response against each lower-ranked one, widest margin first
        best, lower = _side(ranked[0], version), ranked[1:]
        if best["score"] == 0 and reference is not None:
            best, lower = reference, ranked
        source = "reference" if best is reference else "sample"
        worse = [b for b in lower if _separated(best["score"] - b["score"], cfg)]
        worse.sort(key=lambda b: -(best["score"] - b["score"]))  # stable: ties stay in rank order
        if not worse:
            return [_dropped(prompt, NO_MARGIN)]
        return [pair_row(prompt, best, _side(b, version), source=source) for b in worse[: cfg.max_pairs_per_prompt]]
    # all_ranked: every (better, worse) pair with margin, widest margins first.
    candidates = [(a, b) for a in ranked for b in ranked if _separated(a["score"] - b["score"], cfg)]
    if not candidates:
        return [_dropped(prompt, NO_MARGIN)]
    candidates.sort(key=lambda ab: -(ab[0]["score"] - ab[1]["score"]))
    return [pair_row(prompt, _side(a, version), _side(b, version), source="sample") for a, b in candidates[: cfg.max_pairs_per_prompt]]


def _separated(margin: float, cfg: PairsConfig) -> bool:
    return margin > 0 and margin >= cfg.min_margin


def _margin_checked(prompt, chosen, rejected, *, cfg: PairsConfig, source: str | None = None) -> dict[str, Any]:
    margin = chosen["score"] - rejected["score"]
    source = source or ("reference" if chosen["engine"] == "reference" else "sample")
    ok = _separated(margin, cfg)
    return pair_row(prompt, chosen, rejected, source=source, drop=None if ok else NO_MARGIN)


def build_pairs(
    samples: pl.DataFrame,
    prompts: pl.DataFrame,
    votes: pl.DataFrame | None = None,
    parent_samples: pl.DataFrame | None = None,
    future_samples: pl.DataFrame | None = None,
    *,
    cfg: PairsConfig,
    version: str | None = None,
    parent_version: str | None = None,
    future_version: str | None = None,
) -> pl.DataFrame:
    """Pair rows (TRL conversational `prompt`/`chosen`/`rejected` + provenance), `keep`/`drop_reason`.

    `votes` adds each prompt's difficulty (for the curriculum order); `parent_samples` (the lineage's
    first version, `parent_version`) and `future_samples` (a newer model's, `future_version`) feed
    `anchored`. Rows in prompt order, or in curriculum order
    when `cfg.in_curriculum_order`.
    """
    by_prompt = _by_prompt(samples, cfg)
    if future_samples is not None and "judge_score" not in samples.columns:  # scored as this run's are
        future_samples = future_samples.drop("judge_score", strict=False)
    parent_by_prompt, future_by_prompt = _by_prompt(parent_samples, cfg), _by_prompt(future_samples, cfg)
    rows = []
    for prompt in prompts.iter_rows(named=True):
        group, pid = by_prompt.get(prompt["prompt_id"], []), prompt["prompt_id"]
        found = _prompt_pairs(prompt, group, parent_by_prompt.get(pid, []), future_by_prompt.get(pid, []),
                              cfg=cfg, version=version, parent=parent_version, future=future_version)
        messages = group[0]["prompt"] if group else None
        rows.extend(r | {"prompt": messages} for r in found)
    frame = pl.DataFrame(rows, infer_schema_length=None) if rows else pl.DataFrame(schema=_NO_PAIRS)  # no prompts
    return finish_pairs(frame, votes=votes, strategy=cfg.strategy, curriculum=cfg.in_curriculum_order)


def _by_prompt(samples: pl.DataFrame | None, cfg: PairsConfig) -> dict[str, list[dict]]:
    if samples is None or not samples.height:
        return {}
    return {pid: g.to_dicts() for (pid,), g in sample_scores(samples, cfg=cfg).group_by("prompt_id", maintain_order=True)}


# The columns of pair rows before `finish_pairs` adds its own (every prompt was decontaminated away).
_NO_PAIRS = polars_schema(PAIR_CANDIDATES, exclude=(
    "difficulty", "curriculum_rank", "pair_id", "chosen", "rejected", "strategy", "weight", "label_smoothing"))


def finish_pairs(
    frame: pl.DataFrame, *, votes: pl.DataFrame | None, strategy: str, curriculum: bool = False
) -> pl.DataFrame:
    """Pair rows from `pair_row` -> the pairs table: difficulty, curriculum rank, TRL messages, ids;
    sorted by `curriculum_rank` when `curriculum`. CREAM (filters) may change `weight` and
    `label_smoothing` later."""
    if votes is not None and "difficulty" in votes.columns:
        frame = frame.join(votes.select("prompt_id", "difficulty"), on="prompt_id", how="left", maintain_order="left")
    else:
        frame = frame.with_columns(difficulty=pl.lit(None, pl.String))
    assistant = lambda col: pl.concat_list(pl.struct(role=pl.lit("assistant"), content=pl.col(col)))  # noqa: E731
    ranked = rank_curriculum(frame).with_columns(
        pair_id=pl.col("prompt_id") + "-" + pl.coalesce("chosen_sample_id", pl.lit("reference")) + "~"
        + pl.coalesce("rejected_sample_id", pl.lit("none")),
        chosen=assistant("chosen_text"),
        rejected=assistant("rejected_text"),
        strategy=pl.lit(strategy),
        weight=pl.lit(1.0),
        label_smoothing=pl.lit(0.0),
    )
    return ranked.sort("curriculum_rank") if curriculum else ranked


def rank_curriculum(frame: pl.DataFrame, *, last: pl.Expr | None = None) -> pl.DataFrame:
    """`curriculum_rank` (Curry-DPO): kept pairs first, wide margins and easy prompts first; kept
    pairs matching `last` after the other kept ones."""
    order = {"easy": 0, "medium": 1, "hard": 2, "unsolved": 3}
    frame = frame.with_row_index("_i").with_columns(
        _kept=~pl.col("keep"),
        _last=pl.lit(False) if last is None else last.fill_null(False),
        _level=pl.col("difficulty").replace_strict(order, default=4, return_dtype=pl.Int32),
    )
    ranked = frame.sort(
        ["_kept", "_last", "margin", "_level", "_i"], descending=[False, False, True, False, False], nulls_last=True
    )
    ranked = ranked.with_columns(curriculum_rank=pl.int_range(pl.len(), dtype=pl.Int64))
    return ranked.sort("_i").drop("_i", "_kept", "_last", "_level")
