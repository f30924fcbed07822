"""Verify: every generated sample's final answer against its prompt's reference, with math-verify
(GSM8K verifiers, AFT, OmegaPRM all judge by the final answer)."""

from __future__ import annotations

import polars as pl

from prefmill.answers import verify_rows
from prefmill.config import VerifyConfig


def verify(samples: pl.DataFrame, prompts: pl.DataFrame, *, cfg: VerifyConfig) -> pl.DataFrame:
    """Verify generated samples against their prompt's reference (joined on `prompt_id`)."""
    frame = samples.join(prompts.select("prompt_id", "reference"), on="prompt_id", how="left", maintain_order="left")
    checked = verify_rows(
        frame, completion_field="completion", reference_field="reference", cfg=cfg,
        error_field="error", finish_field="finish_reason",
    )
    return checked.drop("reference")
