"""A deterministic engine for unit tests and benchmarks with a known ground truth. Never the default.

A policy maps (request, sample index, rng) to a text; the same request and seed give the same text.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Mapping, Sequence

from prefmill.engines.base import Completion, GenRequest, GenResult

Policy = Callable[[GenRequest, int, random.Random], str]


def _rng(request: GenRequest, index: int) -> random.Random:
    key = f"{request.request_id}|{request.sampling.seed}|{index}".encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


class ScriptedEngine:
    """Runs a policy per sample; counts calls and requests so tests can assert caching."""

    def __init__(self, policy: Policy, *, name: str = "scripted") -> None:
        self.policy = policy
        self.fingerprint = f"scripted:{name}"
        self.calls = 0
        self.requests_seen = 0

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        self.calls += 1
        self.requests_seen += len(requests)
        results = []
        for request in requests:
            completions = []
            for i in range(request.sampling.n):
                rng = _rng(request, i)
                text = self.policy(request, i, rng)
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


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def gsm8k_policy(references: Mapping[str, str], *, p_error: float = 0.3) -> Policy:
    """Answer a GSM8K question with its reference chain; with probability `p_error` get one step wrong.

    The wrong step's result is shifted and the final answer shifted with it, so the error is known
    and the final answer verifiably wrong. Unknown questions get an answerless reply.
    """

    def policy(request: GenRequest, index: int, rng: random.Random) -> str:
        text = last_user_text(request)
        # The longest question contained in the prompt, so a short question inside another never wins.
        found = max((q for q in references if q in text), key=len, default=None)
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
_BLOCK = re.compile(r"\[(Solution|Response A|Response B)\]\n(.*?)(?:\n\[End of Response [AB]\]|\Z)", re.DOTALL)


def _final_answer(text: str) -> str | None:
    found = _FINAL.findall(text)
    return found[-1].strip().replace(",", "") if found else None


def gsm8k_judge_policy(references: Mapping[str, str], *, p_noise: float = 0.0) -> Policy:
    """A judge that knows the reference answers: a correct solution scores 9, a wrong one 2; between
    two responses it prefers the correct one. With probability `p_noise` it answers at random, so
    position-swap and agreement filters have something to catch."""

    def policy(request: GenRequest, index: int, rng: random.Random) -> str:
        text = last_user_text(request)
        found = max((q for q in references if q in text), key=len, default=None)
        truth = _final_answer(references[found]) if found is not None else None
        blocks = {name: body for name, body in _BLOCK.findall(text)}
        right = {name: truth is not None and _final_answer(body) == truth for name, body in blocks.items()}
        noisy = rng.random() < p_noise
        if "Solution" in blocks:
            score = rng.randint(1, 10) if noisy else (9 if right["Solution"] else 2)
            return f"I checked the steps against the problem.\nScore: {score}"
        if noisy:
            return f"Both have merits.\nVerdict: {rng.choice(['A', 'B', 'tie'])}"
        a, b = right.get("Response A", False), right.get("Response B", False)
        verdict = "tie" if a == b else ("A" if a else "B")
        return f"Comparing the final answers.\nVerdict: {verdict}"

    return policy


def routed(solver: Policy, judge: Policy) -> Policy:
    """One scripted engine that both solves and judges, as a policy judging itself does."""

    def policy(request: GenRequest, index: int, rng: random.Random) -> str:
        text = last_user_text(request)
        is_judging = "[Solution]\n" in text or "[Response A]\n" in text
        return (judge if is_judging else solver)(request, index, rng)

    return policy
