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
