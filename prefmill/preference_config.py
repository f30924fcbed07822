"""The preference sections of a recipe: `pairs` (strategies, curriculum) and `filters` (consistency)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class FiltersConfig(BaseModel):
    """Consistency filters on pairs; each drops with a named reason, counted in the manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scir_min_agreement: float | None = Field(None, ge=0.5, le=1)
    """SCIR: keep a pair only when at least this share of judge verdicts prefer chosen; null: off."""
    require_swap_consistent: bool = True
    """With pairwise judging: drop pairs whose A/B and B/A verdicts disagree."""
    verifier_judge_agreement: bool = False
    """Drop pairs where the pairwise judge prefers the side the verifier marked wrong."""
    cream: Literal["off", "weight", "drop"] = "off"
    """CREAM: rank-correlate scores with the parent version's on the same prompts; down-weight or drop."""
    cream_min_consistency: float = Field(0.0, ge=-1, le=1)
    """CREAM: per-prompt Kendall tau below this is inconsistent."""


class PairsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Literal["verified_vs_incorrect", "best_worst", "all_ranked", "spin", "anchored"] = "verified_vs_incorrect"
    """`verified_vs_incorrect`: a correct vs an incorrect sample; `best_worst`: top vs bottom score;
    `all_ranked`: every pair with margin >= min_margin, easy to hard (Curry-DPO); `spin`: reference vs
    own sample (SPIN); `anchored`: rejected from the parent version's outputs (Temporal Self-Rewarding)."""
    min_margin: float = Field(0.0, ge=0, le=1)
    """Score margin a pair needs (scores are in [0, 1]); 0 keeps any strictly better chosen."""
    judge_weight: float = Field(0.3, ge=0, le=1)
    """Weight of the judge score in a sample's score when pointwise judging is on; the verifier has the rest."""
    max_pairs_per_prompt: int = Field(4, ge=1)
    """`all_ranked` only."""
    reference_as_chosen: bool = True
    """With no correct sample, use the reference solution as chosen (`chosen_source="reference"`)."""
    rejected: Literal["most_confident", "least_confident"] = "most_confident"
    """Which incorrect sample to reject: highest mean logprob (a hard negative) or lowest."""
