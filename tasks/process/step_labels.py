"""Rules every step labeller follows (MC, OmegaPRM), from what a rollout proves.

- Hard labels are monotone: after the first False every label is False (a solution is wrong from its
  first wrong step on, PRM800K's and Math-Shepherd's convention). A True after a False is not taken as
  proof that the False was a sampling miss: with k rollouts a correct prefix is missed with probability
  (1 - p)^k, while a wrong prefix reaches the right answer by luck far more often (the main noise of MC
  labels, The Lessons of Developing PRMs); propagating such a True backwards measured worse first-error
  F1 on the ground-truth simulator (bench/labels.py).
- A chain whose own final answer verifies is a correct continuation of each of its prefixes: a
  witness, so all its labels are True and it has no first error, whatever its rollouts did.
- A prefix that already states the final answer is the complete solution: there is nothing to roll
  out; its label is the chain's own verdict (value 1 or 0, from no rollout).
"""

from __future__ import annotations

from collections.abc import Sequence

from prefmill.answers import judge, states_answer
from prefmill.config import VerifyConfig

def is_complete(steps: Sequence[str]) -> bool:
    """The chain's text states its final answer explicitly (`#### x`, `\\boxed{x}`, "the answer is x")."""
    return len(steps) > 0 and states_answer("\n".join(steps))


def chain_verdict(steps: Sequence[str], reference: str | None, cfg: VerifyConfig) -> bool:
    """Whether the chain itself is a verified-correct solution (an explicit final answer equal to the reference)."""
    return is_complete(steps) and judge("\n".join(steps), reference, timeout_seconds=cfg.timeout_seconds)[1]


def monotone_labels(labels: Sequence[bool | None], *, chain_correct: bool) -> list[bool | None]:
    """Hard labels as published: every label after the first False is False; all True for a
    verified-correct chain. Unknown (null) labels before the first False stay null."""
    if chain_correct:
        return [True] * len(labels)
    out, wrong = [], False
    for label in labels:
        out.append(False if wrong else label)
        wrong = wrong or label is False
    return out


def first_error(labels: Sequence[bool | None]) -> int | None:
    """The first False label (0-based); None when all are True, or when an unknown label comes first."""
    for k, label in enumerate(labels):
        if label is None:
            return None
        if not label:
            return k
    return None
