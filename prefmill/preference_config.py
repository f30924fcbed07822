"""The preference sections of a recipe: `pairs` (strategies, curriculum) and `filters` (consistency)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from prefmill.engine_config import EngineConfig


class FiltersConfig(BaseModel):
    """Consistency filters on pairs; each drops with a named reason, counted in the manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scir_min_agreement: float | None = Field(None, ge=0.5, le=1)
    """SCIR: keep a pair only when at least this share of the available reward signals (pointwise
    judge, pairwise judge in both orders, verifier where a reference exists) say chosen is better;
    null: off. Two of three signals is 0.667, so 0.67 asks for all three."""
    scir_missing: Literal["count", "ignore"] = "count"
    """SCIR: a signal that was asked for but gave no parsable verdict counts against the pair
    (`count`) or is left out of the share (`ignore`)."""
    require_swap_consistent: bool = True
    """With pairwise judging: drop pairs whose A/B and B/A verdicts disagree."""
    verifier_judge_agreement: bool = False
    """Drop pairs where the pairwise judge prefers the side the verifier marked wrong."""
    cream: Literal["off", "weight", "drop"] = "off"
    """CREAM: the previous iteration's judge (the latest version made by another model) and this one
    rank THIS iteration's responses; per prompt C = (Kendall tau + 1) / 2. `weight`: every pair of
    the prompt gets `weight = C` and `label_smoothing = 1 - C`; `drop`: pairs with C below
    `cream_min_consistency` are dropped (`cream_inconsistent`). Trainers: TRL's `DPOConfig.label_smoothing`
    is one value for all pairs, so give it `stats.pairs.cream.mean_label_smoothing`; per pair, a DPO
    loss reading the `label_smoothing` (or `weight`) column (tasks/preference/cream.py)."""
    cream_min_consistency: float = Field(0.5, ge=0, le=1)
    """CREAM `drop`: consistency rate C in [0, 1] below which a prompt's pairs are dropped (0.5: tau < 0)."""
    cream_judge: EngineConfig | None = None
    """CREAM: the previous iteration's judge; null: the engine recorded in that version's manifest
    (`config.judge.engine`, else `config.engine`)."""


class PairsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Literal["verified_vs_incorrect", "best_worst", "all_ranked", "curry", "spin", "anchored"] = (
        "verified_vs_incorrect"
    )
    """`verified_vs_incorrect`: a correct vs an incorrect sample; `best_worst`: top vs bottom score;
    `all_ranked`: every (better, worse) pair with margin >= min_margin, widest first; `curry`: the best
    response vs each lower-ranked one (Curry-DPO), in curriculum order; `spin`: reference vs own
    sample (SPIN); `anchored`: rejected from the lineage's first model (Temporal Self-Rewarding)."""
    min_margin: float = Field(0.0, ge=0, le=1)
    """Score margin a pair needs (scores are in [0, 1]); 0 keeps any strictly better chosen."""
    judge_weight: float = Field(0.3, ge=0, le=1)
    """Weight of the judge score in a sample's score when pointwise judging is on; the verifier has the rest."""
    max_pairs_per_prompt: int = Field(4, ge=1)
    """`all_ranked` and `curry`: the widest-margin (easiest) pairs of a prompt are kept."""
    curriculum: bool | None = None
    """Publish the pairs sorted by `curriculum_rank` (easy to hard: widest margin first) instead of in
    prompt order; null: on for `curry`, off otherwise. `curriculum_rank` is set either way."""
    reference_as_chosen: bool = True
    """With no correct sample, use the reference solution as chosen (`chosen_source="reference"`)."""
    rejected: Literal["most_confident", "least_confident"] = "most_confident"
    """Which incorrect sample to reject: highest mean logprob (a hard negative) or lowest."""

    future_version: str | None = Field(None, pattern=r"^v\d{4}$")
    """`anchored`: Temporal Self-Rewarding's Future-Guided Chosen. A version of this dataset (`v0003`)
    sampled by the next model (the temporary "future" model trained on this iteration's anchored
    pairs) on the same prompts; its samples are re-scored by this run's judge, and where the best of
    them beats this run's best, it becomes chosen (`chosen_source="future"`). null: off."""

    @model_validator(mode="after")
    def _future_needs_anchored(self) -> "PairsConfig":
        if self.future_version is not None and self.strategy != "anchored":
            raise ValueError(f"pairs.future_version works with strategy 'anchored' (Temporal Self-Rewarding), "
                             f"not {self.strategy!r}")
        return self

    @property
    def in_curriculum_order(self) -> bool:
        return self.strategy == "curry" if self.curriculum is None else self.curriculum
