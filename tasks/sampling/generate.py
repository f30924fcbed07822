"""Generate: n samples per prompt in one engine call (ReFT, Self-Consistency, SPIN sample this way)."""

from __future__ import annotations

import polars as pl

from prefmill.config import GenerateConfig
from prefmill.engines.base import Engine, GenRequest, GenResult, Sampling
from prefmill.seeds import derived_seed
from prefmill.errors import EngineError
from prefmill.schemas.tables import SAMPLES
from prefmill.schemas.validate import polars_schema


def build_messages(question: str, *, cfg: GenerateConfig) -> tuple[dict[str, str], ...]:
    user = {"role": "user", "content": cfg.prompt_template.replace("{question}", question)}
    if cfg.system_prompt:
        return ({"role": "system", "content": cfg.system_prompt}, user)
    return (user,)


def build_requests(prompts: pl.DataFrame, *, cfg: GenerateConfig) -> list[GenRequest]:
    return [
        GenRequest(
            request_id=pid,
            messages=build_messages(question, cfg=cfg),
            sampling=Sampling(
                n=cfg.n,
                temperature=cfg.temperature,
                top_p=cfg.top_p,
                max_tokens=cfg.max_tokens,
                seed=derived_seed(cfg.seed, pid),
                stop=cfg.stop,
            ),
            purpose="generate",
            inputs={"question": question},
        )
        for pid, question in zip(prompts["prompt_id"], prompts["question"])
    ]


def _rows(request: GenRequest, result: GenResult, engine: str) -> list[dict]:
    base = {"prompt_id": request.request_id, "prompt": list(request.messages), "seed": request.sampling.seed, "engine": engine}
    if result.error is not None:
        return [
            base | {"sample_index": i, "completion": "", "num_tokens": 0, "mean_logprob": None,
                    "finish_reason": "error", "error": result.error}
            for i in range(request.sampling.n)
        ]
    return [
        base | {"sample_index": c.index, "completion": c.text, "num_tokens": c.num_tokens,
                "mean_logprob": c.mean_logprob, "finish_reason": c.finish_reason, "error": None}
        for c in result.completions
    ]


def generate(prompts: pl.DataFrame, *, engine: Engine, cfg: GenerateConfig) -> pl.DataFrame:
    """One row per sample; a request the engine failed keeps n rows with `error` set.

    Raises `EngineError` when more than `cfg.max_failed_share` of the requests failed.
    """
    requests = build_requests(prompts, cfg=cfg)
    results = {r.request_id: r for r in engine.generate(requests)} if requests else {}
    rows = [row for req in requests for row in _rows(req, results[req.request_id], engine.fingerprint)]
    failed = sum(results[r.request_id].error is not None for r in requests)
    if requests and failed / len(requests) > cfg.max_failed_share:
        first = next(results[r.request_id].error for r in requests if results[r.request_id].error)
        raise EngineError(
            f"generate: {failed} of {len(requests)} requests failed in the engine; first error: {first}",
            hint="raise generate.max_failed_share to keep the failures as rows, or fix the engine",
        )
    frame = pl.DataFrame(rows, schema=polars_schema(SAMPLES, exclude=("sample_id",)))
    return frame.with_columns(
        sample_id=pl.col("prompt_id") + "-" + pl.col("sample_index").cast(pl.String)
    )


def generate_chunk(prompts: pl.DataFrame, *, start: int, size: int, engine: Engine, cfg: GenerateConfig) -> pl.DataFrame:
    """`generate` on the checkpointed chunk `prompts[start:start + size]`."""
    return generate(prompts.slice(start, size), engine=engine, cfg=cfg)


def concat_samples(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """The chunks' samples as one table, in chunk order."""
    return pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=polars_schema(SAMPLES))
