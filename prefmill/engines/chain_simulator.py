"""A ground-truth chain simulator: GSM8K reference chains that go wrong step by step with known
probabilities, so step labellers (MC, OmegaPRM, the consensus filter) are scored against exact values.

Why: `scripted.Gsm8kChainPolicy` never lets a wrong prefix reach the right answer and its tests run it
with q=1, where MC is exact. The main noise of MC labels ("The Lessons of Developing Process Reward Models
in Mathematical Reasoning", Zhang et al. 2025) is a wrong prefix that still ends right (a false positive)
and a right prefix whose rollouts go wrong later (a false negative); this simulator has both.

The model, for one GSM8K reference (steps s_1..s_n = its lines before `####`, final answer A):

- Written after a correct prefix, a step that shows a number goes wrong with probability `p_step`: its
  result shifted by 1..9 (`scripted.corrupt_step`). Steps without a number never go wrong. After the
  first wrong step the rest of the reference steps follow unchanged.
- A solution holding a wrong step still ends with A with probability `luck` (lucky recovery), else
  with A shifted; a solution without a wrong step ends with A.
- Every written step begins, with probability `variety`, with an opener ("So ", "Then ", ...): sampled
  chains word their steps differently, as a real policy's samples do, so they share few prefixes.
- A fresh chain (purpose "generate", sample i = chain i) is such a solution written from the empty
  prefix; a rollout (purpose "rollout", `continue_final`) writes the rest after a step prefix by the
  same rules. A prefix is wrong iff a line, opener aside, differs from the reference line at its position
  (or it has more lines than the reference); one holding the `####` line is complete and continues with
  nothing.

So the exact probability that a rollout from a prefix reaches A (what MC values estimate) is
`(1-p)^r + (1 - (1-p)^r) * luck` for a correct prefix with r numbered steps left (1 when r = 0),
`luck` for a wrong prefix, and 1 or 0 for a complete prefix (its own answer is A or not).

A rollout's randomness derives from (question, prefix text, sampling seed, sample index), never from
the request id, so identical prefixes sampled with the same seed give identical rollouts, as a seeded
real engine does. The "first_error" judge names the true first wrong step of the steps it is shown
with probability `judge_accuracy`, else another answer drawn uniformly.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from prefmill.engines.base import GenRequest
from prefmill.engines.scripted import corrupt_step, partial_answer


@dataclass(frozen=True)
class SimulatorConfig:
    """The simulator's noise; the defaults make MC with k=1 visibly noisy."""

    p_step: float = 0.15
    """Chance that a numbered step written after a correct prefix goes wrong; in [0, 1]."""
    luck: float = 0.15
    """Chance that a solution holding a wrong step still ends with the right answer; in [0, 1]."""
    judge_accuracy: float = 0.75
    """Chance that the first-error judge names the true first wrong step (or none); in [0, 1]."""
    variety: float = 0.5
    """Chance that a written step begins with an opener (`OPENERS`); 0: every chain words its steps as
    the reference does, so all correct chains of a question are one text; in [0, 1]."""
    salt: str = ""
    """Another salt draws other chains, rollouts and judge answers."""

    def __post_init__(self) -> None:
        for name in ("p_step", "luck", "judge_accuracy", "variety"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SimulatorConfig.{name} must be in [0, 1]; got {getattr(self, name)}")


@dataclass(frozen=True)
class Chain:
    """One sampled chain: its text, its steps (newline rule, `####` joined to the last step), the
    0-based step of its first error (None: no wrong step), and whether its final answer is right."""

    text: str
    steps: tuple[str, ...]
    first_error: int | None
    final_correct: bool


OPENERS = ("So ", "Then ", "Next, ", "Now ")


def _seeded(*parts: object) -> random.Random:
    key = "\x1f".join(str(p) for p in parts).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


def _lines(partial: str) -> list[str]:
    return [line.strip() for line in partial.split("\n") if line.strip()]


def _says(line: str, reference_line: str) -> bool:
    """Whether a written line is the reference line, maybe after an opener."""
    return line == reference_line or any(line == opener + reference_line for opener in OPENERS)


def _strays(lines: Sequence[str], reference: Sequence[str]) -> bool:
    """Whether `lines` (no `####` line) hold a wrong step: one not saying its reference line, or one too many."""
    return len(lines) > len(reference) or any(not _says(a, b) for a, b in zip(lines, reference))


class ChainSimulator:
    """A `ScriptedEngine` policy with an exact truth for every prefix; see the module docstring."""

    def __init__(self, references: Mapping[str, str], cfg: SimulatorConfig = SimulatorConfig()) -> None:
        self.cfg = cfg
        self._references: dict[str, tuple[list[str], str]] = {}
        for question, solution in references.items():
            body, sep, final = solution.rpartition("####")
            if not sep:
                raise ValueError(f"chain simulator: the reference of {question[:60]!r} has no `####` line")
            self._references[question] = ([ln.strip() for ln in body.split("\n") if ln.strip()], final.strip())
        self._found: dict[str, str | None] = {}

    # --- the truth ---

    def reference(self, question: str) -> tuple[list[str], str]:
        """(the reference's step lines, stripped; its final answer)."""
        if question not in self._references:
            raise KeyError(f"chain simulator: no reference for question {question[:60]!r}")
        lines, final = self._references[question]
        return list(lines), final

    def numbered(self, question: str) -> list[bool]:
        """Per reference step: whether it shows a number, i.e. can go wrong."""
        return [corrupt_step(line, 1) is not None for line in self.reference(question)[0]]

    def first_error(self, question: str, steps: Sequence[str]) -> int | None:
        """0-based index of the first of `steps` (a solution's steps, or any prefix of them) that is wrong."""
        reference, _ = self.reference(question)
        for k, step in enumerate(steps):
            lines = _lines(step)
            body = [ln for ln in lines if not ln.startswith("####")]
            if len(body) != 1 or k >= len(reference) or not _says(body[0], reference[k]):
                return k
        return None

    def prefix_value(self, question: str, partial: str) -> float:
        """Exact probability that a rollout from the partial answer `partial` ends with the right answer."""
        reference, final = self.reference(question)
        lines = _lines(partial)
        if any(line.startswith("####") for line in lines):
            return 1.0 if _answer(lines) == _plain(final) else 0.0
        if _strays(lines, reference):
            return self.cfg.luck
        r = sum(self.numbered(question)[len(lines) :])
        clean = (1.0 - self.cfg.p_step) ** r
        return clean + (1.0 - clean) * self.cfg.luck

    def values(self, question: str, steps: Sequence[str]) -> list[float]:
        """Exact value of every step prefix k = 1..len(steps), prefixes written as `mc_label` sends them."""
        return [self.prefix_value(question, "\n".join(steps[:k]) + "\n") for k in range(1, len(steps) + 1)]

    # --- sampling ---

    def _finish(self, question: str, done: list[str], rng: random.Random) -> tuple[list[str], str, int | None]:
        """(the lines written after `done`, the final answer, the index of the first wrong line written)."""
        reference, final = self.reference(question)
        numbered = self.numbered(question)
        wrong = _strays(done, reference)
        rest, erred = [], None
        for t in range(len(done), len(reference)):
            line, shift, slip = reference[t], rng.randint(1, 9), rng.random() < self.cfg.p_step
            opener = rng.choice(OPENERS) if rng.random() < self.cfg.variety else ""
            if numbered[t] and slip and not wrong:
                line, wrong, erred = corrupt_step(line, shift), True, t
            rest.append(opener + line)
        if wrong and rng.random() >= self.cfg.luck:
            final = corrupt_step(final, rng.randint(1, 9)) or f"{final}{rng.randint(1, 9)}"
        return rest, final, erred

    def chain(self, question: str, index: int) -> Chain:
        """Chain `index` of `question`: a fresh solution, the same for the same index and salt."""
        lines, final, erred = self._finish(question, [], _seeded("chain", self.cfg.salt, question, index))
        text = "\n".join([*lines, f"#### {final}"])
        steps = tuple([*lines[:-1], f"{lines[-1]}\n#### {final}"] if lines else [f"#### {final}"])
        return Chain(text, steps, erred, _plain(final) == _plain(self.reference(question)[1]))

    def rollout(self, question: str, partial: str, *, seed: int | None, index: int) -> str:
        """The continuation after `partial` (whole lines) up to `#### answer`; empty after a complete one."""
        done = _lines(partial)
        if any(line.startswith("####") for line in done):
            return ""
        rng = _seeded("rollout", self.cfg.salt, question, partial, seed, index)
        rest, final, _ = self._finish(question, done, rng)
        lead = "\n" if partial and not partial.endswith("\n") else ""
        return lead + "\n".join([*rest, f"#### {final}"])

    def judge_first_error(self, question: str, steps: Sequence[str], *, seed: int | None, index: int) -> str:
        """The judge's answer on `steps`: the true first wrong step (1-based) or none, with `judge_accuracy`."""
        truth = self.first_error(question, steps)
        answer: int | str = "none" if truth is None else truth + 1
        rng = _seeded("judge", self.cfg.salt, question, "\x1e".join(steps), seed, index)
        others = [a for a in ["none", *range(1, len(steps) + 1)] if a != answer]
        if others and rng.random() >= self.cfg.judge_accuracy:
            answer = rng.choice(others)
        return f"I checked every step against the problem.\nFirst error: {answer}"

    # --- the policy ---

    def find_question(self, text: str) -> str | None:
        """The reference question `text` is (or holds, inside a prompt template): the longest one contained."""
        if text in self._references:
            return text
        if text not in self._found:
            self._found[text] = max((q for q in self._references if q in text), key=len, default=None)
        return self._found[text]

    def __call__(self, request: GenRequest, index: int, rng: random.Random) -> str:
        """Answer by `request.purpose` from `request.inputs`; the engine's `rng` (seeded by the request
        id) is not used, so the same prefix gets the same rollouts in any request."""
        question = self.find_question(str(request.inputs.get("question", "")))
        if question is None:
            raise ValueError(f"chain simulator: request {request.request_id!r} has no known inputs['question']")
        if request.purpose == "generate":
            return self.chain(question, index).text
        if request.purpose == "rollout":
            partial = partial_answer(request)
            if partial is None:
                raise ValueError(f"chain simulator: rollout {request.request_id!r} must be a continue_final request")
            return self.rollout(question, partial, seed=request.sampling.seed, index=index)
        if request.purpose == "first_error":
            return self.judge_first_error(question, list(request.inputs["steps"]), seed=request.sampling.seed,
                                          index=index)
        raise ValueError(f"chain simulator: purpose {request.purpose!r} is not simulated "
                         "(generate, rollout and first_error are)")


def _plain(answer: str) -> str:
    return answer.replace(",", "").strip()


def _answer(lines: list[str]) -> str:
    return _plain([line for line in lines if line.startswith("####")][-1].removeprefix("####"))
