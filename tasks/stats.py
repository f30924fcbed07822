"""Per-version statistics for the manifest, `prefmill show` and the run's Prefect artifacts."""

from __future__ import annotations

from typing import Any

import polars as pl

from prefmill.tasks.preference.cream import NO_PREVIOUS_ITERATION, NOT_SHARED, SAME_JUDGE, SCORED
from prefmill.tasks.preference.filters import CREAM_INCONSISTENT, SCIR_DISAGREEMENT, SCIR_NO_SIGNAL

MARGIN_BINS = [round(0.1 * i, 1) for i in range(1, 10)]


def _counts(column: pl.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in column.drop_nulls().value_counts(sort=True).iter_rows()}


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def sample_stats(samples: pl.DataFrame) -> dict[str, Any]:
    per_prompt = samples.group_by("prompt_id").agg(pl.col("correct").any().alias("any_correct"))
    stats = {
        "samples": samples.height,
        "prompts": per_prompt.height,
        "correct": int(samples["correct"].sum()),
        "accuracy": _round(samples["correct"].mean() or 0.0),
        "pass_at_n": _round(per_prompt["any_correct"].mean() or 0.0),
        "mean_tokens": _round(samples["num_tokens"].mean() or 0.0, 1),
        "finish_reason": _counts(samples["finish_reason"]),
        "verify_error": _counts(samples["verify_error"]),
        "engine_failures": int(samples["error"].is_not_null().sum()),
    }
    if "judge_score" in samples.columns:
        stats["judge"] = {
            "judged": int(samples["judge_score"].is_not_null().sum()),
            "mean_score": _round(samples["judge_score"].mean()),
            "parse_errors": _counts(samples["judge_parse_error"]) if "judge_parse_error" in samples.columns else {},
        }
    return stats


def separability(pairs: pl.DataFrame) -> dict[str, Any]:
    """"More is Less": pairs only teach when their sides are separable; report what weakens that."""
    if not pairs.height:
        return {"margin_histogram": {}, "same_model_share": None, "length_diff_chars": None}
    margins = pairs["margin"].drop_nulls()
    histogram = (
        _counts(margins.cut(MARGIN_BINS, left_closed=True).cast(pl.String)) if margins.len() else {}
    )
    length_diff = pairs["chosen_text"].str.len_chars().cast(pl.Int64) - pairs["rejected_text"].str.len_chars().cast(pl.Int64)
    return {
        "margin_histogram": histogram,
        "mean_margin": _round(margins.mean()),
        "same_model_share": _round((pairs["chosen_engine"] == pairs["rejected_engine"]).mean()),
        "length_diff_chars": {"mean": _round(length_diff.mean(), 1), "median": _round(length_diff.median(), 1)},
        "chosen_longer_share": _round((length_diff > 0).mean()),
    }


def pair_stats(outcomes: pl.DataFrame) -> dict[str, Any]:
    kept = outcomes.filter(pl.col("keep"))
    stats = {
        "pairs": kept.height,
        "candidates": outcomes.height,
        "dropped": _counts(outcomes["drop_reason"]),
        "chosen_source": _counts(kept["chosen_source"]),
        "strategy": _counts(kept["strategy"]),
        "difficulty": _counts(kept["difficulty"]) if "difficulty" in kept.columns else {},
        "separability": separability(kept),
    }
    if "scir_agreement" in outcomes.columns:
        stats["scir"] = scir_stats(outcomes)
    if "cream_status" in outcomes.columns and outcomes["cream_status"].drop_nulls().len():
        stats["cream"] = cream_stats(outcomes)
    return stats


def scir_stats(outcomes: pl.DataFrame) -> dict[str, Any]:
    """What each reward signal said of the candidates (agree | disagree | missing; absent: not available)."""
    return {
        "signals": {name: _counts(outcomes[f"scir_{name}"]) for name in ("pointwise", "pairwise", "verifier")},
        "mean_agreement": _round(outcomes["scir_agreement"].mean()),
        "dropped": {r: int((outcomes["drop_reason"] == r).sum()) for r in (SCIR_DISAGREEMENT, SCIR_NO_SIGNAL)},
    }


def cream_stats(outcomes: pl.DataFrame) -> dict[str, Any]:
    """CREAM against the previous iteration: prompts by status, the drop rate among the pairs it
    measured, the mean consistency rate, and the mean label smoothing (TRL's global `label_smoothing`)."""
    rows = outcomes.filter(pl.col("cream_status").is_not_null())
    prompts = rows.unique("prompt_id", keep="first", maintain_order=True)
    scored = prompts.filter(pl.col("cream_status") == SCORED)
    measured = rows.filter((pl.col("cream_status") == SCORED)
                           & (pl.col("keep") | (pl.col("drop_reason") == CREAM_INCONSISTENT).fill_null(False)))
    dropped = int((measured["drop_reason"] == CREAM_INCONSISTENT).sum())
    status = _counts(prompts["cream_status"])
    note = None
    if set(status) == {NO_PREVIOUS_ITERATION}:
        note = "no earlier version made by another model (engine fingerprint): CREAM did nothing"
    elif set(status) <= {SAME_JUDGE, NOT_SHARED}:
        note = "the previous iteration's judge is this run's judge (or no prompt is shared): CREAM did nothing"
    version, judge = rows["cream_version"].drop_nulls(), rows["cream_judge"].drop_nulls()
    return {
        "previous_version": version[0] if version.len() else None,
        "judge": judge[0] if judge.len() else None,
        "prompts": status,
        "pairs_scored": measured.height,
        "dropped": dropped,
        "drop_rate": _round(dropped / measured.height) if measured.height else None,
        "mean_consistency": _round(scored["cream_consistency"].mean()),
        "mean_tau": _round(scored["cream_tau"].mean()),
        "mean_label_smoothing": _round(rows.filter(pl.col("keep"))["label_smoothing"].mean()),
        "note": note,
    }


def vote_stats(votes: pl.DataFrame) -> dict[str, Any]:
    return {
        "prompts": votes.height,
        "mean_vote_share": _round(votes["vote_share"].mean()),
        "label_source": _counts(votes["label_source"]),
        "difficulty": _counts(votes["difficulty"]),
    }


def decontamination_stats(checked: pl.DataFrame) -> dict[str, Any]:
    return {"prompts": checked.height, "dropped": int((~checked["keep"]).sum())}


def step_stats(chains: pl.DataFrame, labelled: pl.DataFrame, published: pl.DataFrame) -> dict[str, Any]:
    """Label balance and first-error positions of the step labels."""
    labels = published["labels"].explode().drop_nulls() if published.height else pl.Series([], dtype=pl.Boolean)
    return {
        "chains": chains.height,
        "dropped": _counts(chains["drop_reason"]),
        "labelled": labelled.height,
        "published": published.height,
        "unlabelled": labelled.height - published.height,
        "steps": int(labels.len()),
        "positive_steps": int(labels.sum()),
        "negative_steps": int(labels.len() - labels.sum()),
        "chains_with_error": int(published["first_error_step"].is_not_null().sum()) if published.height else 0,
        "first_error_step": _counts(published["first_error_step"].cast(pl.String)) if published.height else {},
        "rollout_tokens": int(labelled["rollout_tokens"].sum() or 0) if labelled.height else 0,
    }


def rise_stats(edits: pl.DataFrame, outcomes: pl.DataFrame | None = None) -> dict[str, Any]:
    """How many edits were kept, per error type and editor, and why the others were dropped (an engine
    error counted without its message); with the mixed pair `outcomes`, how many became pairs."""
    kept = edits.filter(pl.col("keep"))
    per_type = edits.group_by("error_type").agg(edits=pl.len(), kept=pl.col("keep").sum()).sort("error_type")
    outcomes = pl.DataFrame() if outcomes is None else outcomes
    paired = outcomes.filter(pl.col("strategy") == "rise") if "strategy" in outcomes.columns else outcomes.clear()
    return {
        "solutions": edits["solution_id"].n_unique(),
        "edits": edits.height,
        "kept": kept.height,
        "kept_share": _round(kept.height / edits.height) if edits.height else None,
        "dropped": _counts(edits["drop_reason"].str.split(":").list.first()),
        "by_error_type": {r["error_type"]: {"edits": r["edits"], "kept": int(r["kept"])} for r in per_type.iter_rows(named=True)},
        "by_editor": _counts(kept["editor"]),
        "mean_changed_share": _round(kept["changed_share"].mean()),
        "pairs": int(paired["keep"].sum()) if paired.height else 0,
        "over_ratio": int((~paired["keep"]).sum()) if paired.height else 0,
    }
