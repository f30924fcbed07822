"""A scripted RISE editor for tests: edits the step the prompt asks for as a model would, and with
probability `p_bad` edits it the ways the RISE filters exist for (admits the error, changes nothing,
rewrites the whole step)."""

from __future__ import annotations

import random

from prefmill.engines.base import GenRequest
from prefmill.engines.scripted import Policy, corrupt_step

BAD_EDITS = ("admit", "unchanged", "rewrite")


def asked_step(request: GenRequest) -> tuple[int, str]:
    """(1-based step number, its text) that a `rise_edit` request asks to rewrite, from its inputs."""
    return int(request.inputs["step_number"]), request.inputs["step"]


def gsm8k_edit_policy(*, p_bad: float = 0.0, bad: tuple[str, ...] = BAD_EDITS) -> Policy:
    """Shift the step's last result by 1-9 (tasks: `corrupt_step`); a bad edit is drawn from `bad`."""

    def policy(request: GenRequest, index: int, rng: random.Random) -> str:
        k, step = asked_step(request)
        edited = corrupt_step(step, rng.randint(1, 9)) or step
        if rng.random() < p_bad:
            kind = rng.choice(bad)
            if kind == "admit":
                return f"Step {k}: {edited} Wait, that is a mistake."
            if kind == "unchanged":
                return f"Step {k}: {step}"
            return f"Step {k}: Let us count everything again from the very start in a completely different way."
        return f"Step {k}: {edited}"

    return policy
