"""What every LLM-as-judge stage shares (pointwise and pairwise judging, the consensus judge): one
request per item, all sent in one call, per-sample outputs with their parse errors, and the rule that
fails a stage whose judge outputs are mostly unusable (Critique Ability: small judges often are)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prefmill.config import JudgeConfig
from prefmill.engines.base import Engine, GenRequest, GenResult, Purpose, Sampling
from prefmill.errors import EngineError, InputError
from prefmill.seeds import derived_seed

# parse_error values every judge shares; an engine failure is recorded as f"{ENGINE_ERROR}: <message>".
EMPTY_OUTPUT = "empty_output"
ENGINE_ERROR = "engine_error"

# (raw text or None for an engine failure, parsed value or None, parse_error or None) per judge sample
Output = tuple[str | None, Any, str | None]


def question_of(messages: list[dict[str, str]] | None, item_id: str, *, stage: str) -> str:
    """The problem is the last user message of the prompt the judged solution answered."""
    content = next((m["content"] for m in reversed(messages or []) if m["role"] == "user"), None)
    if content is None:
        raise InputError(f"{stage}: {item_id!r} has no user message in `prompt`",
                         hint="prompt must be the chat messages the solution answered")
    return content


def closing(answer: str, *, rationale: bool) -> str:
    """The prompt's last sentence: how to answer (`answer` shows the line, e.g. "`Score: <1-10>`")."""
    if rationale:
        return f"Explain your assessment briefly, then end with a final line exactly {answer}."
    return f"Reply with one line, exactly {answer}, and nothing else."


def answer_format(line: str, *, rationale: bool) -> str:
    """The guided-decoding regex: the answer line, after a one-line rationale when one is asked for."""
    return r"[^\n]{1,300}\n" + line if rationale else line


def judge_request(
    request_id: str, content: str, cfg: JudgeConfig, *, line: str, purpose: Purpose, inputs: Mapping[str, Any]
) -> GenRequest:
    """A one-turn judge request: `cfg.samples` samples, seeded by the request id, guided to end with
    the answer `line` (a regex) when `cfg.constrained`."""
    sampling = Sampling(n=cfg.samples, temperature=cfg.temperature, max_tokens=cfg.tokens,
                        seed=derived_seed(cfg.seed, request_id), logprobs=False,
                        regex=answer_format(line, rationale=cfg.rationale) if cfg.constrained else None)
    return GenRequest(request_id, messages=({"role": "user", "content": content},), sampling=sampling,
                      purpose=purpose, inputs=dict(inputs))


def generate_all(engine: Engine, requests: list[GenRequest], *, stage: str) -> dict[str, GenResult]:
    """All of a stage's requests in one call, results keyed by request id (engines may reorder)."""
    results = {r.request_id: r for r in engine.generate(requests)} if requests else {}
    if missing := [r.request_id for r in requests if r.request_id not in results]:
        raise EngineError(f"{stage}: the engine returned no result for {len(missing)} request(s), e.g. {missing[0]!r}",
                          hint="an engine must return one result per request")
    return results


def judge_outputs(request: GenRequest, result: GenResult, parse: Callable[[str], tuple]) -> list[Output]:
    """One output per judge sample; an engine failure gives n outputs with no text (null, never "")."""
    if result.error is not None:
        return [(None, None, f"{ENGINE_ERROR}: {result.error}")] * request.sampling.n
    outputs = []
    for completion in sorted(result.completions, key=lambda c: c.index):
        parsed = parse(completion.text)
        outputs.append((completion.text, parsed, parsed[-1]))
    return outputs


def check_parse_failures(stage: str, outputs: list[Output], cfg: JudgeConfig) -> None:
    """Fail the stage when more than `max_parse_fail` of all judge outputs are unusable."""
    failed = [(raw, error) for raw, _, error in outputs if error is not None]
    if not outputs or len(failed) / len(outputs) <= cfg.max_parse_fail:
        return
    raw, error = failed[0]
    first = error if raw is None else f"{error} in {raw[:200]!r}"
    raise EngineError(
        f"judge {stage}: {len(failed)} of {len(outputs)} judge outputs ({len(failed) / len(outputs):.0%}) "
        f"could not be used, more than judge.max_parse_fail={cfg.max_parse_fail}; first: {first}",
        hint="turn on judge.constrained (guided decoding), raise judge.max_parse_fail, or use a stronger judge (judge.engine)",
    )
