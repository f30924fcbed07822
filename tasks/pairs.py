"""Pairs: per prompt, a verified-correct answer (chosen) against an incorrect one (rejected).

Chosen is the correct sample the model was most sure of (highest mean logprob); with none, the
reference solution when the recipe allows it (SPIN's reference-as-chosen). Rejected is an incorrect,
non-empty sample. Prompts that yield no pair stay in the output with `keep=False` and a `drop_reason`.
"""

from __future__ import annotations

import re

import polars as pl

from prefmill.config import PairsConfig

STAGE_VERSION = 1
STRATEGY = "verified_vs_incorrect"

NO_INCORRECT_SAMPLE = "no_incorrect_sample"
NO_CORRECT_SAMPLE = "no_correct_sample"

_CALCULATOR = re.compile(r"<<[^<>]*>>")


def reference_as_solution(reference: str) -> str:
    """A GSM8K reference without its calculator annotations (`<<48/2=24>>`), as a model would write it."""
    return _CALCULATOR.sub("", reference).strip()


def _best(samples: pl.DataFrame, *, descending: bool, prefix: str) -> pl.DataFrame:
    """One sample per prompt, by mean logprob (ties: lowest sample index), columns prefixed."""
    return (
        samples.sort(["mean_logprob", "sample_index"], descending=[descending, False], nulls_last=True)
        .group_by("prompt_id", maintain_order=True)
        .first()
        .select(
            "prompt_id",
            pl.col("sample_id").alias(f"{prefix}_sample_id"),
            pl.col("completion").alias(f"{prefix}_text"),
            pl.col("extracted").alias(f"{prefix}_answer"),
            pl.col("mean_logprob").alias(f"{prefix}_logprob"),
            pl.col("prompt").alias(f"{prefix}_prompt"),
            pl.col("engine").alias(f"{prefix}_engine"),
        )
    )


def _assistant(text: pl.Expr) -> pl.Expr:
    return pl.concat_list(pl.struct(role=pl.lit("assistant"), content=text))


def build_pairs(samples: pl.DataFrame, prompts: pl.DataFrame, *, cfg: PairsConfig) -> pl.DataFrame:
    """One row per prompt: the pair in TRL's conversational format plus `keep` and `drop_reason`."""
    usable = samples.filter(pl.col("error").is_null() & (pl.col("completion").str.strip_chars() != ""))
    chosen = _best(usable.filter(pl.col("correct")), descending=True, prefix="chosen")
    rejected = _best(
        usable.filter(~pl.col("correct")), descending=cfg.rejected == "most_confident", prefix="rejected"
    )
    has_reference = pl.col("reference").is_not_null() & pl.lit(cfg.reference_as_chosen)
    reference_text = pl.col("reference").map_elements(reference_as_solution, return_dtype=pl.String)
    frame = (
        prompts.select("prompt_id", "reference", "reference_answer")
        .join(chosen, on="prompt_id", how="left", maintain_order="left")
        .join(rejected, on="prompt_id", how="left", maintain_order="left")
        .with_columns(
            chosen_source=pl.when(pl.col("chosen_sample_id").is_not_null())
            .then(pl.lit("sample"))
            .when(has_reference)
            .then(pl.lit("reference")),
        )
        .with_columns(
            drop_reason=pl.when(pl.col("rejected_sample_id").is_null())
            .then(pl.lit(NO_INCORRECT_SAMPLE))
            .when(pl.col("chosen_source").is_null())
            .then(pl.lit(NO_CORRECT_SAMPLE)),
        )
    )
    from_reference = pl.col("chosen_source") == "reference"
    return frame.select(
        "prompt_id",
        pl.col("drop_reason").is_null().alias("keep"),
        "drop_reason",
        pl.coalesce("rejected_prompt", "chosen_prompt").alias("prompt"),
        _assistant(pl.when(from_reference).then(reference_text).otherwise(pl.col("chosen_text"))).alias("chosen"),
        _assistant(pl.col("rejected_text")).alias("rejected"),
        pl.lit(STRATEGY).alias("strategy"),
        "chosen_source",
        "chosen_sample_id",
        "rejected_sample_id",
        pl.when(from_reference).then(pl.col("reference_answer")).otherwise(pl.col("chosen_answer")).alias("chosen_answer"),
        "rejected_answer",
        "reference_answer",
        "chosen_logprob",
        "rejected_logprob",
        pl.coalesce("rejected_engine", "chosen_engine").alias("engine"),
    )
