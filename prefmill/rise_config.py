"""The `rise` section of a recipe: RISE error injection, its error catalogue and its edit checks."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from prefmill.engine_config import EngineConfig

# The error types the rule-based injector (tasks.rise.arithmetic) can make.
RULE_ERROR_TYPES = ("change_number", "change_operator", "swap_terms")

# RISE's seven subtle error types ("Subtle Errors Matter", Xu et al. 2024): name -> what the edit
# prompt asks for. A recipe adds its own under `rise.catalogue` or replaces one of these by name.
RISE_ERROR_TYPES = {
    "change_number": "Change one number in this step to a different, plausible number.",
    "change_related_numbers": "Change two or more related numbers in this step consistently, as if a "
    "quantity had been misread.",
    "wrong_substitution": "Use a wrong value for one of the quantities this step uses, such as a number "
    "from another part of the problem.",
    "delete_term": "Leave out one term of this step's calculation, as if it had been forgotten.",
    "change_related_words": "Change a few words so that the step misunderstands the problem, such as "
    "'more' for 'less', 'each' for 'in total', or 'hours' for 'minutes'.",
    "change_operator": "Change one arithmetic operation in this step, such as + for - or x for /, and "
    "compute the new result.",
    "swap_terms": "Swap two terms of this step's calculation, such as the order of a subtraction or a division.",
}

ADMISSION_PHRASES = (
    "mistake", "incorrect", "error", "actually", "wait", "oops", "correction", "wrong", "sorry",
    "typo", "should be", "let me re", "changed", "instead of",
)


class RiseConfig(BaseModel):
    """RISE: the model edits a verified-correct solution to hold one subtle error; the pair (original,
    edit) is a hard negative that differs in a few tokens ("Subtle Errors Matter", Xu et al. 2024)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    editor: Literal["llm", "rules"] = "llm"
    """`llm`: the policy (or `engine`) edits one step as an error type's prompt asks; `rules`: change a
    number, an operator or the order of two terms in a shown calculation and recompute what follows."""
    mode: Literal["step_then_continue", "edit_only"] = "step_then_continue"
    """`step_then_continue`: edit one step, let the model finish the solution from there, so the error
    reaches the final answer; `edit_only`: keep the rest of the solution as it was."""
    error_types: tuple[str, ...] | None = None
    """Names from the catalogue to use; null uses all of them."""
    catalogue: dict[str, str] = {}
    """More error types (name -> instruction), added to the seven built-in ones or replacing one by name."""
    edits_per_solution: int = Field(1, ge=1, le=16)
    """Edits of each solution, each with another error type and step (seeded)."""
    solutions_per_prompt: int = Field(1, ge=1, le=16)
    """Correct samples to edit per prompt, most confident first."""
    use_reference: bool = False
    """Edit the reference solution too when a prompt has fewer correct samples than `solutions_per_prompt`."""
    rules_fallback: bool = True
    """With `editor: llm`: a solution whose every LLM edit was dropped gets a rule-based edit instead."""
    admission_phrases: tuple[str, ...] = ADMISSION_PHRASES
    """An edit is dropped when its text holds one of these (whole words, any case) more often than the original."""
    max_changed_share: float = Field(0.5, gt=0, le=1)
    """An edit may change at most this share of the edited step's tokens."""
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(96, ge=8)
    """New tokens for the edited step."""
    continue_max_tokens: int = Field(256, ge=8)
    """New tokens for the continuation after the edited step (`step_then_continue`)."""
    constrained: Literal["off", "line", "template"] = "template"
    """Guided decoding of the edit (vLLM engines): `line` keeps it to one line; `template` also keeps the
    step's words, leaving the model only its numbers and operators to change, for the error types in
    `template_types` (the others get `line`), so even a small model makes a minimal edit; `off`: free text."""
    template_types: tuple[str, ...] = (
        "change_number", "change_related_numbers", "wrong_substitution", "change_operator", "swap_terms",
    )
    """Error types that change only numbers and operators: the ones `constrained: template` applies to."""
    seed: int = 777
    ratio: float | None = Field(1.0, ge=0)
    """At most this many RISE pairs per kept sampled pair (the rest dropped as `over_ratio`), so a run
    with no sampled pair keeps no RISE pair; null keeps every RISE pair."""
    engine: EngineConfig | None = None
    """Another model as editor; null uses the policy engine."""

    @field_validator("catalogue")
    @classmethod
    def _instructions(cls, value: dict[str, str]) -> dict[str, str]:
        for name, instruction in value.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(f"error type name {name!r} must be lower_snake_case")
            if not isinstance(instruction, str) or not instruction.strip():
                raise ValueError(f"error type {name!r} needs a non-empty instruction")
        return value

    @model_validator(mode="after")
    def _known_types(self) -> "RiseConfig":

        known = self.error_catalogue()
        unknown = [name for name in self.error_types or () if name not in known]
        if unknown:
            raise ValueError(
                f"rise.error_types: unknown {', '.join(map(repr, unknown))}; known: {', '.join(known)} "
                "(add your own under rise.catalogue)"
            )
        if self.editor == "rules" and not set(self.chosen_types()) & set(RULE_ERROR_TYPES):
            raise ValueError(f"rise.editor 'rules' makes only {', '.join(RULE_ERROR_TYPES)}; rise.error_types has none of them")
        return self

    def error_catalogue(self) -> dict[str, str]:
        return {**RISE_ERROR_TYPES, **self.catalogue}

    def chosen_types(self) -> dict[str, str]:
        """The error types this run draws from, name -> instruction."""
        catalogue = self.error_catalogue()
        return {name: catalogue[name] for name in (self.error_types or catalogue)}
