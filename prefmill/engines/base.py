"""The engine contract: a stage sends all its requests in one call, the engine batches them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Message = dict[str, str]  # {"role": "user" | "assistant" | "system", "content": str}

# What a request is for. Engines that simulate a model (ScriptedEngine) route on it, never on the
# prompt's wording; real engines ignore it.
Purpose = Literal[
    "generate",  # a fresh answer to a question
    "judge_pointwise",  # score one solution
    "judge_pairwise",  # pick the better of two solutions
    "first_error",  # name a solution's first wrong step (consensus filter)
    "rise_edit",  # rewrite one step of a correct solution with a subtle error
    "rise_continue",  # finish a solution from an edited step
    "rollout",  # finish a solution from a step prefix (MC, OmegaPRM)
]
PURPOSES: tuple[str, ...] = Purpose.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Sampling:
    """Sampling for one request; mirrors `vllm.SamplingParams`."""

    n: int = 1
    """Samples per request, >= 1."""
    temperature: float = 0.8
    """>= 0; 0 is greedy."""
    top_p: float = 0.95
    """In (0, 1]; 1 turns nucleus sampling off."""
    max_tokens: int = 256
    """New tokens per sample, >= 1."""
    seed: int | None = None
    """Per-request seed. Sample i is the draw seeded `seed + first_index + i` (vLLM's own rule for
    n > 1), so a sample is the same whatever n is and whichever request asks for it. None: not
    reproducible."""
    first_index: int = 0
    """Index of the request's first sample in its (prompt, seed) stream, >= 0: a request for samples
    k..k+n-1 continues an earlier one for 0..k-1 without repeating its samples (OmegaPRM's batches)."""
    stop: tuple[str, ...] = ()
    """Strings that end a sample (not included in the text)."""
    logprobs: bool = True
    """Keep the sampled tokens' log-probabilities (their mean becomes a column)."""
    regex: str | None = None
    """Constrain the text to this regular expression (guided decoding); None: free text."""


def sample_seed(sampling: Sampling, i: int) -> int | None:
    """The seed of the request's sample i (0 <= i < n); None for an unseeded request."""
    return None if sampling.seed is None else sampling.seed + sampling.first_index + i


@dataclass(frozen=True)
class GenRequest:
    """Chat messages (templated by the engine) or a raw prefix to continue, plus sampling."""

    request_id: str
    messages: tuple[Message, ...] | None = None
    prefix: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    continue_final: bool = False
    """The messages end with a partial assistant turn that the engine continues, with no end-of-turn
    token after it (chat template rendered with `continue_final_message=True` and no generation
    prompt): Math-Shepherd / OmegaPRM rollouts from a step prefix. The completions hold only the
    continuation, not the partial turn. False: a fresh assistant turn after the messages."""
    purpose: Purpose = "generate"
    """What the request is for (see `Purpose`); not part of any cache key."""
    inputs: Mapping[str, Any] = field(default_factory=dict)
    """What the prompt was built from (question, solution, steps, ...), by name: a simulated engine
    answers from these, so rewording a prompt template changes no test. Real engines ignore it."""

    def __post_init__(self) -> None:
        if self.purpose not in PURPOSES:
            raise ValueError(f"request {self.request_id!r}: purpose must be one of {', '.join(PURPOSES)}; got {self.purpose!r}")
        if (self.messages is None) == (self.prefix is None):
            raise ValueError(f"request {self.request_id!r}: give exactly one of `messages` or `prefix`")
        if self.continue_final:
            if self.messages is None:
                raise ValueError(
                    f"request {self.request_id!r}: continue_final needs `messages` ending with the partial "
                    "assistant turn; a raw `prefix` is continued as it is, so leave continue_final False"
                )
            last = self.messages[-1]["role"] if self.messages else None
            if last != "assistant":
                raise ValueError(
                    f"request {self.request_id!r}: continue_final needs the last message to be the partial "
                    f"assistant turn; got last role {last!r}"
                )


@dataclass(frozen=True)
class Completion:
    """One sample of a request."""

    index: int
    text: str
    num_tokens: int
    mean_logprob: float | None
    finish_reason: Literal["stop", "length", "error"] | str


@dataclass(frozen=True)
class GenResult:
    """All samples of one request, or the error that made it fail after retries."""

    request_id: str
    completions: tuple[Completion, ...] = ()
    prompt_tokens: int = 0
    error: str | None = None


@runtime_checkable
class Engine(Protocol):
    fingerprint: str
    """Model + revision + dtype + engine version; part of every cache key."""

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """Results in the order of `requests`, one per request, failed ones carrying `error`."""
        ...


def generate_with_splitting(
    requests: Sequence[GenRequest],
    run_batch,
    *,
    is_retryable=lambda exc: True,
) -> list[GenResult]:
    """Run `run_batch(requests)`; on failure split the batch in halves and retry each half.

    A single request that still fails comes back as a `GenResult` with its error, so nothing is
    silently dropped and one bad request cannot sink a whole stage. Errors for which
    `is_retryable` is false are raised at once.
    """
    if not requests:
        return []
    try:
        return run_batch(requests)
    except Exception as exc:  # engine errors are data here: recorded per request below
        if not is_retryable(exc):
            raise
        if len(requests) == 1:
            return [GenResult(request_id=requests[0].request_id, error=f"{type(exc).__name__}: {exc}")]
        mid = len(requests) // 2
        return generate_with_splitting(requests[:mid], run_batch, is_retryable=is_retryable) + (
            generate_with_splitting(requests[mid:], run_batch, is_retryable=is_retryable)
        )
