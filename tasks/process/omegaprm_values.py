"""What an OmegaPRM tree knows of a state and what an output row may claim: the search settings, a
state's counts (`Node`), and a row's hard labels and per-prefix MC values with the n behind each.

Why a module of its own: what a row may claim is the point of the audit this follows. A value is the
share of k fresh rollouts from that prefix (never the searched rollout itself, never a check cut short
at its first correct rollout); a prefix nobody checked has value null and n 0. The one exception is the
complete solution (its last step states the final answer): nothing can follow it, so its value is its
own verdict, exactly 1 or 0, from no rollout (n 0), as in `mc_label` (`tasks.process.step_labels`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prefmill.tasks.process.mc_label import step_prefix
from prefmill.tasks.process.step_labels import is_complete

METHOD = "omegaprm"


@dataclass(frozen=True)
class OmegaConfig:
    """OmegaPRM search settings; alpha, beta, L, c_puct and k = 8 are the paper's values."""

    rollouts_per_check: int = 8
    """k: fresh rollouts per checked prefix; all k must fail for MC = 0 (Math-Shepherd's N = 8); >= 1."""
    budget: int = 200
    """Most rollouts per question; candidates not finished within it get status `budget`; >= 1."""
    alpha: float = 0.5
    """Q's weight on MC: alpha^(1 - MC(s)) prefers states likely to be right; in (0, 1]."""
    beta: float = 0.9
    """Q's weight on length: beta^(len(r) / L) prefers short rollouts; in (0, 1]."""
    L: int = 500
    """Length scale of Q in tokens (whitespace words for input chains); >= 1."""
    c_puct: float = 0.125
    """Exploration weight of U (visit counts of states); >= 0, 0 turns exploration off."""
    early_stop: bool = False
    """Stop a check at its first correct rollout (batches first_batch, doubling up to k): cheaper, but
    such a check has no unbiased share, so its value is published as null (its n is kept)."""
    first_batch: int = 2
    """With early_stop, rollouts in a check's first batch; >= 1."""
    share_rollouts: bool = True
    """A correct rollout also witnesses the longer prefixes of its own text (for hard labels and Q)."""
    explore: bool = False
    """Add the wrong rollouts of checked states to the pool and search them with the budget the input
    chains leave (rows with source `rollout`): the paper's tree search."""
    split: float = 0.5
    """Where between the last positive prefix (lo) and the first MC = 0 one (hi) to check next, as a share
    of hi - lo; 0.5 is the paper's binary search; in (0, 1)."""
    width: int = 1
    """Candidates of one question searched at once (one check each per round); 1 is the paper's loop,
    where each selection sees the statistics of the searches before it; >= 1."""
    max_tokens: int = 512
    temperature: float = 0.8
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name, low in (("rollouts_per_check", 1), ("budget", 1), ("L", 1), ("first_batch", 1), ("width", 1),
                          ("max_tokens", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"OmegaConfig.{name} must be >= {low}; got {getattr(self, name)}")
        for name in ("alpha", "beta"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"OmegaConfig.{name} must be in (0, 1]; got {getattr(self, name)}")
        if not 0 < self.split < 1:
            raise ValueError(f"OmegaConfig.split must be in (0, 1); got {self.split}")
        if self.c_puct < 0:
            raise ValueError(f"OmegaConfig.c_puct must be >= 0; got {self.c_puct}")


@dataclass
class Node:
    """A state. `n`/`correct` count only the fresh rollouts started from it (its published value);
    `witness`: some verified-correct solution holds this prefix (hard label True, whatever n says);
    `visits` is the paper's N(s), the times a candidate of this state was selected."""

    n: int = 0
    correct: int = 0
    started: int = 0
    visits: int = 0
    witness: bool = False
    fixed: bool = False
    failed: bool = False
    in_flight: bool = False
    wrong: list = field(default_factory=list)

    @property
    def mc(self) -> float:
        """Q's MC(s): the fresh share, else 1 for a witnessed state and 0 for an unknown one."""
        return self.correct / self.n if self.n else float(self.witness)

    def positive(self) -> bool:
        return self.witness or self.correct > 0

    def negative(self, k: int) -> bool:
        return not self.positive() and self.n >= k

    def value(self, k: int) -> float | None:
        """correct / n when the check drew k rollouts chosen before any outcome; else None (no unbiased share)."""
        return self.correct / self.n if self.fixed and self.n >= k else None


def prefix_key(steps: Sequence[str], j: int) -> str:
    """The partial answer holding the first j steps (`mc_label.step_prefix`); the root is ""."""
    return step_prefix(steps, j) if j else ""


def step_values(steps: Sequence[str], upto: int, nodes: dict[str, Node], *, k: int, correct: bool,
                start: int = 0) -> tuple[list[float | None], list[int], list[int]]:
    """(values, n, correct) of prefixes 1..upto: the tree's fresh counts; the complete solution's verdict.

    An explored rollout's own state (prefixes <= `start`) is valued in the row that checked it, not
    again here: a state yields one row per wrong rollout of its check, so repeating its value in each
    would weight it by its own outcome (a state with 1 right rollout of 8 would appear 7 times)."""
    values, counts, corrects = [], [], []
    complete = is_complete(steps)
    for j in range(1, upto + 1):
        node = nodes.get(prefix_key(steps, j))
        if complete and j == len(steps):
            values.append(1.0 if correct else 0.0)
        else:
            values.append(node.value(k) if node is not None and node.n and j > start else None)
        counts.append(node.n if node is not None else 0)
        corrects.append(node.correct if node is not None else 0)
    return values, counts, corrects


def hard_labels(size: int, first_error: int | None) -> list[bool]:
    """[True] * e + [False] (cut after the first error, as Math-Shepherd / PRM800K stepwise sets are), or
    all True: monotone by construction, and `first_error_step` is its first False."""
    return [True] * size if first_error is None else [True] * first_error + [False]


def chain_row(c: Any, prompt_id: str, prompt: list[dict], nodes: dict[str, Node], *, k: int,
              engine: str) -> dict:
    """The output row of candidate `c` (an input chain or a searched rollout)."""
    labelled = c.status == "labelled"
    e = c.first_error if labelled else None
    cut = c.steps if e is None else c.steps[: e + 1]
    values, counts, corrects = step_values(c.steps, len(cut), nodes, k=k, correct=c.correct, start=c.start)
    return {
        "chain_id": c.chain_id, "prompt_id": prompt_id, "prompt": prompt, "completions": cut,
        "labels": hard_labels(len(cut), e) if labelled else None, "values": values,
        "rollout_counts": counts, "rollouts_correct": corrects, "first_error_step": e,
        "status": c.status, "source": c.source, "method": METHOD, "engine": engine,
        "rollout_tokens": c.tokens, "rollouts": c.rollouts,
    }
