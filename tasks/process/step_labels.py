"""Rules every step labeller follows (MC, OmegaPRM), from what a rollout proves.

- A correct rollout from prefix j is also a correct continuation of every shorter prefix (the steps
  between them, then the rollout), so a True hard label at j makes every earlier label True: hard
  labels are monotone, never False then True.
- A chain whose own final answer verifies is a correct continuation of each of its prefixes: a
  witness, so all its labels are True and it has no first error, whatever its rollouts did.
- A prefix that already states the final answer is the complete solution: there is nothing to roll
  out; its label is the chain's own verdict (value 1 or 0, from no rollout).
"""

from __future__ import annotations

from collections.abc import Sequence

from prefmill.answers import find_answer, judge
from prefmill.config import VerifyConfig

EXPLICIT = ("hashes", "boxed", "answer_is")  # how a stated final answer was found (not a trailing guess)


def is_complete(steps: Sequence[str]) -> bool:
    """The chain's text states its final answer explicitly (`#### x`, `\\boxed{x}`, "the answer is x")."""
    return len(steps) > 0 and find_answer("\n".join(steps))[1] in EXPLICIT


def chain_verdict(steps: Sequence[str], reference: str | None, cfg: VerifyConfig) -> bool:
    """Whether the chain itself is a verified-correct solution (an explicit final answer equal to the reference)."""
    return is_complete(steps) and judge("\n".join(steps), reference, timeout_seconds=cfg.timeout_seconds)[1]


def monotone_labels(labels: Sequence[bool | None], *, chain_correct: bool) -> list[bool | None]:
    """Hard labels with what later evidence proves: every label before a True one is True; all True
    for a verified-correct chain. Unknown (null) labels stay null unless a later True witnesses them."""
    if chain_correct:
        return [True] * len(labels)
    out, witnessed = list(labels), False
    for i in reversed(range(len(out))):
        witnessed = witnessed or out[i] is True
        if witnessed:
            out[i] = True
    return out


def first_error(labels: Sequence[bool | None]) -> int | None:
    """The first False label (0-based); None when all are True, or when an unknown label comes first."""
    for k, label in enumerate(labels):
        if label is None:
            return None
        if not label:
            return k
    return None
