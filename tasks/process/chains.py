"""Chains: the solutions whose steps get labelled, split into steps (PRM800K, Math-Shepherd).

From the policy's own samples (Math-Shepherd labels what the policy writes), from the reference
solutions, or both (a reference's steps then contrast with the policy's own in `step_pairs`). A chain that cannot be labelled stays with `keep=False` and a `drop_reason`.
"""

from __future__ import annotations

import polars as pl

from prefmill.config import GenerateConfig, ProcessConfig
from prefmill.tasks.sampling.generate import build_messages
from prefmill.tasks.process.steps import steps_frame


NO_STEPS = "no_steps"
TOO_MANY_STEPS = "too_many_steps"
ENGINE_FAILED = "engine_failed"


def build_chains(
    samples: pl.DataFrame, prompts: pl.DataFrame, *, cfg: ProcessConfig, generate_cfg: GenerateConfig
) -> pl.DataFrame:
    """One row per chain: `chain_id`, `prompt_id`, `prompt` (messages), `steps`, `keep`, `drop_reason`."""
    sampled = samples.select(
        pl.col("sample_id").alias("chain_id"), "prompt_id", "prompt", pl.col("completion").alias("text"), "error"
    )
    references = pl.DataFrame(
            {
                "chain_id": [f"{pid}-reference" for pid in prompts["prompt_id"]],
                "prompt_id": prompts["prompt_id"],
                "prompt": [list(build_messages(q, cfg=generate_cfg)) for q in prompts["question"]],
                "text": prompts["reference"],
            "error": pl.Series([None] * prompts.height, dtype=pl.String),
        },
        schema=sampled.schema,
    ).filter(pl.col("text").is_not_null())
    solutions = {"samples": sampled, "reference": references}.get(cfg.chains)
    if solutions is None:  # both: the reference's steps contrast with the policy's own (step pairs)
        solutions = pl.concat([references, sampled])
    split = steps_frame(solutions, text_column="text", id_column="chain_id", rule=cfg.split)
    n_steps = split["steps"].list.len().fill_null(0)
    return solutions.with_columns(steps=split["steps"]).select(
        "chain_id",
        "prompt_id",
        "prompt",
        "steps",
        keep=(n_steps > 0) & (n_steps <= cfg.max_steps) & pl.col("error").is_null(),
        drop_reason=pl.when(pl.col("error").is_not_null())
        .then(pl.lit(ENGINE_FAILED))
        .when(n_steps == 0)
        .then(pl.lit(NO_STEPS))
        .when(n_steps > cfg.max_steps)
        .then(pl.lit(TOO_MANY_STEPS)),
    )
