"""A scripted chain policy with a known first error, after Math-Shepherd's MC estimation: continues
GSM8K reference chains from a step prefix. (prefmill.engines.chain_simulator is the richer ground
truth, with lucky recoveries and exact per-prefix probabilities.)"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping

from prefmill.engines.base import GenRequest
from prefmill.engines.scripted import shifted_number, corrupt_step, partial_answer, question_text


def _seeded(*parts: object) -> random.Random:
    key = "|".join(str(p) for p in parts).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


class Gsm8kChainPolicy:
    """Continues GSM8K reference chains from a step prefix, with a known first error; see `gsm8k_chain_policy`."""

    def __init__(self, references: Mapping[str, str], *, p_error: float, q: float = 0.7, seed_salt: str = "") -> None:
        for name, value in (("p_error", p_error), ("q", q)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"gsm8k_chain_policy: {name} must be in [0, 1]; got {value}")
        self.references = dict(references)
        self.p_error = p_error
        self.q = q
        self.seed_salt = seed_salt
        self._found: dict[str, str | None] = {}

    def reference_steps(self, question: str) -> tuple[list[str], str]:
        """(the reference's non-blank lines before `####`, stripped; its final answer)."""
        if question not in self.references:
            raise KeyError(f"gsm8k_chain_policy: no reference for question {question[:60]!r}")
        body, _, final = self.references[question].rpartition("####")
        return [line.strip() for line in body.split("\n") if line.strip()], final.strip()

    def _plan(self, question: str, index: int) -> tuple[int | None, int]:
        rng = _seeded("chain", self.seed_salt, question, index)
        erring, shift = rng.random() < self.p_error, rng.randint(1, 9)
        candidates = [i for i, line in enumerate(self.reference_steps(question)[0]) if corrupt_step(line, 1)]
        return (rng.choice(candidates) if erring and candidates else None), shift

    def first_error_step(self, question: str, index: int) -> int | None:
        """0-based step of chain (`question`, `index`) where its error is, None when the chain is correct.

        A chain errs with probability `p_error`, at a step drawn uniformly among the steps that show a
        number; a reference with no such step gives only correct chains.
        """
        return self._plan(question, index)[0]

    def chain(self, question: str, index: int) -> tuple[str, int | None]:
        """(the full solution of chain (`question`, `index`), its first-error step): one step per line,
        the error a shifted result at that step, and the final answer shifted by the same amount."""
        error_step, shift = self._plan(question, index)
        steps, final = self.reference_steps(question)
        if error_step is not None:
            steps[error_step] = corrupt_step(steps[error_step], shift)
            final = shifted_number(final, shift) or f"{final}{shift}"
        return "\n".join([*steps, f"#### {final}"]), error_step

    def continuation(self, question: str, partial: str, rng: random.Random) -> str:
        """What follows `partial` (whole lines of an answer to `question`) up to `#### answer`.

        A prefix with a line that differs from the reference (or more lines than it) is wrong: the
        continuation finishes the reference's remaining steps and ends with a wrong answer. A correct
        prefix is continued correctly with probability `q`, else with an error at a later step. A prefix
        that already holds the `####` line is complete: the continuation is empty.
        """
        steps, final = self.reference_steps(question)
        done = [line.strip() for line in partial.split("\n") if line.strip()]
        if any(line.startswith("####") for line in done):
            return ""
        rest = steps[len(done) :]
        shift = rng.randint(1, 9)
        wrong = len(done) > len(steps) or any(d != s for d, s in zip(done, steps))
        if not wrong and rng.random() >= self.q:
            candidates = [i for i, line in enumerate(rest) if corrupt_step(line, shift)]
            if candidates:
                j = rng.choice(candidates)
                rest[j] = corrupt_step(rest[j], shift)
                wrong = True
        if wrong:
            final = shifted_number(final, shift) or f"{final}{shift}"
        lead = "\n" if partial and not partial.endswith("\n") else ""
        return lead + "\n".join([*rest, f"#### {final}"])

    def find_question(self, text: str) -> str | None:
        """The longest reference question inside `text`, so a short question inside another never wins."""
        if text not in self._found:
            self._found[text] = max((q for q in self.references if q in text), key=len, default=None)
        return self._found[text]

    def __call__(self, request: GenRequest, index: int, rng: random.Random) -> str:
        question = self.find_question(question_text(request))
        if question is None:
            return "I am not sure how to solve this."
        partial = partial_answer(request)
        if partial is None:  # a fresh turn: sample `index` is chain (question, index)
            return self.chain(question, index)[0]
        return self.continuation(question, partial, rng)


def gsm8k_chain_policy(
    references: Mapping[str, str], *, p_error: float, q: float = 0.7, seed_salt: str = ""
) -> Gsm8kChainPolicy:
    """A policy with a known truth for step labels, after Math-Shepherd's MC estimation.

    - A fresh turn: sample `index` of a question is chain (question, index), the reference solution
      with, with probability `p_error`, one result shifted at step `first_error_step(question, index)`
      and the final answer shifted with it (`chain(question, index)` returns the text and that step).
    - A `continue_final` turn (the partial answer is whole lines, as `tasks.mc_label` sends them):
      a prefix holding a wrong step always ends wrong; a correct prefix ends right with probability `q`
      and otherwise errs at a later step, as a real policy does not always finish a correct start.

    So a prefix's true label is "correct iff it holds no wrong step", and with k rollouts a correct
    prefix is mislabelled (no rollout right) with probability (1 - q)^k. `seed_salt` draws other chains.
    """
    return Gsm8kChainPolicy(references, p_error=p_error, q=q, seed_salt=seed_salt)
