"""A deterministic engine for unit tests and benchmarks with a known ground truth. Never the default.

A policy maps (request, sample index, rng) to a text; the same request and seed give the same text.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation

from prefmill.engines.base import Completion, GenRequest, GenResult, sample_seed

Policy = Callable[[GenRequest, int, random.Random], str]


def _rng(request: GenRequest, index: int) -> random.Random:
    """Sample `index`'s randomness: what is asked (the request's inputs and the partial answer it
    continues; a hand-built request without inputs: its messages) and the sample's seed, as a seeded real
    engine; never the request id, never a template's wording. (An unseeded request draws by its id.)"""
    seed = sample_seed(request.sampling, index)
    if seed is None:
        what: object = [request.request_id, index]
    elif request.inputs:  # what the prompt was built from, and the partial answer continued: not its wording
        what = [request.purpose, dict(request.inputs), partial_answer(request)]
    else:
        what = [request.messages, request.prefix, request.continue_final]
    key = json.dumps([what, seed], sort_keys=True, default=list).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


class ScriptedEngine:
    """Runs a policy per sample; counts calls and requests so tests can assert caching."""

    def __init__(self, policy: Policy, *, name: str = "scripted", latency: float = 0.0,
                 latency_per_request: float = 0.0) -> None:
        self.policy = policy
        self.fingerprint = f"scripted:{name}"
        self.latency = latency  # seconds a call takes, as a model's would
        self.latency_per_request = latency_per_request  # plus this much per request of the call
        self.calls = 0
        self.requests_seen = 0

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        self.calls += 1
        if self.latency or self.latency_per_request:
            time.sleep(self.latency + self.latency_per_request * len(requests))
        self.requests_seen += len(requests)
        results = []
        for request in requests:
            completions = []
            for i in range(request.sampling.n):
                rng = _rng(request, i)
                text = self.policy(request, request.sampling.first_index + i, rng)
                words = text.split()[: request.sampling.max_tokens]
                truncated = len(text.split()) > request.sampling.max_tokens
                completions.append(
                    Completion(
                        index=i,
                        text=" ".join(words) if truncated else text,
                        num_tokens=len(words),
                        mean_logprob=round(-rng.uniform(0.1, 2.0), 6) if words else None,
                        finish_reason="length" if truncated else "stop",
                    )
                )
            results.append(GenResult(request.request_id, tuple(completions), prompt_tokens=0))
        return results


def last_user_text(request: GenRequest) -> str:
    if request.prefix is not None:
        return request.prefix
    return next(m["content"] for m in reversed(request.messages) if m["role"] == "user")


def question_text(request: GenRequest) -> str:
    """The question a request is about: its `inputs["question"]`, else (a request built by hand) its
    last user message."""
    return request.inputs.get("question") or last_user_text(request)


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


class QuestionIndex:
    """Finds the longest known question contained in a text (so a short question inside another never
    wins) without scanning them all: questions are indexed by their first `_WORDS` words, and a text is
    looked up at each of its word positions, so a scripted run over 100k questions stays cheap."""

    _WORDS = 6

    def __init__(self, questions) -> None:
        self.known = set(questions)
        self.by_head: dict[tuple[str, ...], list[str]] = {}
        self.short: list[str] = []  # fewer words than a head, or not starting at a word boundary
        for q in questions:
            words = q.split()
            if len(words) < self._WORDS or not q[:1].strip():
                self.short.append(q)
            else:
                self.by_head.setdefault(tuple(words[: self._WORDS]), []).append(q)

    def find(self, text: str) -> str | None:
        if text in self.known:  # the text is a question itself (requests carry it in `inputs`)
            return text
        words, found = text.split(), [q for q in self.short if q in text]
        for i in range(len(words) - self._WORDS + 1):
            found += [q for q in self.by_head.get(tuple(words[i : i + self._WORDS]), ()) if q in text]
        if not found:  # e.g. glued to the text before it: the slow way
            found = [q for heads in self.by_head.values() for q in heads if q in text]
        return max(found, key=len, default=None)


def gsm8k_policy(references: Mapping[str, str], *, p_error: float = 0.3) -> Policy:
    """Answer a GSM8K question with its reference chain; with probability `p_error` get one step wrong.

    The wrong step's result is shifted and the final answer shifted with it, so the error is known
    and the final answer verifiably wrong. Unknown questions get an answerless reply.
    """

    questions = QuestionIndex(references)

    def policy(request: GenRequest, index: int, rng: random.Random) -> str:
        text = question_text(request)
        # The longest question contained in the prompt, so a short question inside another never wins.
        found = questions.find(text)
        solution = references[found] if found is not None else None
        if solution is None:
            return "I am not sure how to solve this."
        body, _, final = solution.rpartition("####")
        steps = [s for s in body.strip().split("\n") if s.strip()]
        final = final.strip()
        if rng.random() >= p_error or not steps:
            return "\n".join(steps + [f"#### {final}"])
        shift = rng.randint(1, 9)
        k = rng.randrange(len(steps))
        numbers = _NUMBER.findall(steps[k])
        if numbers:
            wrong = str(_to_number(numbers[-1]) + shift)
            head, sep, tail = steps[k].rpartition(numbers[-1])
            steps[k] = head + wrong + tail
        wrong_final = str(_to_number(final.replace(",", "")) + shift) if _NUMBER.fullmatch(
            final.replace(",", "")
        ) else f"{final}{shift}"
        return "\n".join(steps + [f"#### {wrong_final}"])

    return policy


def _to_number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


_FINAL = re.compile(r"####\s*([^\n]*)")


def _final_answer(text: str) -> str | None:
    found = _FINAL.findall(text)
    return found[-1].strip().replace(",", "") if found else None


def gsm8k_judge_policy(references: Mapping[str, str], *, p_noise: float = 0.0) -> Policy:
    """A judge that knows the reference answers: a correct solution scores 9, a wrong one 2; between
    two responses it prefers the correct one; asked for a first error, it names the first step not in
    the reference chain. With probability `p_noise` it answers at random, so position-swap, agreement
    and consensus filters have something to catch. It reads what it judges from `request.inputs`
    (question, solution | first, second | steps), never from the prompt's wording."""

    questions = QuestionIndex(references)

    def policy(request: GenRequest, index: int, rng: random.Random) -> str:
        text = judged(request, index, rng)  # a judge asked for the answer line alone has no room for more
        return text.rsplit("\n", 1)[-1] if request.sampling.max_tokens < 32 else text

    def judged(request: GenRequest, index: int, rng: random.Random) -> str:
        inputs = request.inputs
        text = question_text(request)
        found = questions.find(text)
        truth = _final_answer(references[found]) if found is not None else None
        if request.purpose == "first_error":  # name the first step that differs from the reference chain
            reference = [line.strip() for line in references[found].split("\n")] if found else []
            shown = list(enumerate(inputs.get("steps", []), start=1))
            # a step is judged by its first line (a last step may carry the `#### answer` line after it)
            wrong = next((k for k, step in shown if step.split("\n")[0].strip() not in reference), None)
            if rng.random() < p_noise and shown:
                wrong = rng.choice([None, *range(1, len(shown) + 1)])
            return f"I compared every step with the problem.\nFirst error: {wrong if wrong else 'none'}"
        noisy = rng.random() < p_noise
        if request.purpose == "judge_pointwise":
            right = truth is not None and _final_answer(inputs["solution"]) == truth
            score = rng.randint(1, 10) if noisy else (9 if right else 2)
            return f"I checked the steps against the problem.\nScore: {score}"
        if noisy:
            return f"Both have merits.\nVerdict: {rng.choice(['A', 'B', 'tie'])}"
        a, b = (truth is not None and _final_answer(inputs[side]) == truth for side in ("first", "second"))
        verdict = "tie" if a == b else ("A" if a else "B")
        return f"Comparing the final answers.\nVerdict: {verdict}"

    return policy


_JUDGING = ("judge_pointwise", "judge_pairwise", "first_error")
_CONTINUING = ("rollout", "rise_continue")


def routed(
    solver: Policy, judge: Policy, *, continuation: Policy | None = None, editor: Policy | None = None
) -> Policy:
    """One scripted engine that solves, judges, continues step prefixes and edits steps (RISE), as one
    real model does; which of them answers is the request's `purpose`."""

    def policy(request: GenRequest, index: int, rng: random.Random) -> str:
        if continuation is not None and request.purpose in _CONTINUING:
            return continuation(request, index, rng)
        if editor is not None and request.purpose == "rise_edit":
            return editor(request, index, rng)
        return (judge if request.purpose in _JUDGING else solver)(request, index, rng)

    return policy


# --- Continuation requests and a chain policy with a known first error (Math-Shepherd ground truth) ---


def partial_answer(request: GenRequest) -> str | None:
    """The partial assistant turn a `continue_final` request continues; None for a fresh turn or a raw prefix."""
    if not request.continue_final or request.messages is None:
        return None
    return request.messages[-1]["content"]


_CALCULATION = re.compile(r"<<([^<>\n=]*)=([^<>\n]*)>>")
_SHOWN = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def shifted_number(number: str, shift: int) -> str | None:
    """`number` + `shift` written plainly (no exponent, no trailing zeros); None when it is no number."""
    try:
        value = Decimal(number.replace(",", "").strip()) + shift
    except InvalidOperation:
        return None
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def corrupt_step(step: str, shift: int) -> str | None:
    """`step` with its result off by `shift`, or None when the step shows no number to change.

    The result of the last `<<a op b=c>>` annotation becomes c + shift, and so does the number shown
    right after it when that number is c; a step without an annotation gets its last number shifted.
    """
    calculations = [m for m in _CALCULATION.finditer(step) if shifted_number(m.group(2), 0) is not None]
    if calculations:
        m = calculations[-1]
        wrong = shifted_number(m.group(2), shift)
        after = step[m.end() :]
        shown = _SHOWN.match(after)
        if shown and shifted_number(shown.group(), 0) == shifted_number(m.group(2), 0):
            after = wrong + after[shown.end() :]
        return step[: m.start(2)] + wrong + ">>" + after
    numbers = list(_SHOWN.finditer(step))
    if not numbers:
        return None
    last = numbers[-1]
    return step[: last.start()] + shifted_number(last.group(), shift) + step[last.end() :]
