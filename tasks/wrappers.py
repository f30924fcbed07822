"""Thin Prefect tasks around the pure stages: read refs, call the stage, write Parquet, return a ref.

Cache keys are explicit: stage name + STAGE_VERSION + config hash + input content hashes + engine
fingerprint. Prefect's default policy includes the run id and would not resume across runs; this
one does, so rerunning a crashed or finished command recomputes nothing already done.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import polars as pl
from prefect import task
from prefect.cache_policies import CachePolicy
from prefect.filesystems import LocalFileSystem
from prefect.logging import get_run_logger
from pydantic import BaseModel

from prefmill.config import SourceConfig, config_hash
from prefmill.engines.base import Engine
from prefmill.refs import TableRef, write_table
from prefmill.schemas.tables import PAIRS, PROMPTS, SAMPLES, VERIFIED
from prefmill.schemas.validate import conform
from prefmill.store import publish_version
from prefmill.tasks.stats import pair_stats, sample_stats
from prefmill.sources import load_prompts
from prefmill.tasks import generate as generate_stage
from prefmill.tasks import pairs as pairs_stage
from prefmill.tasks import verify as verify_stage


def _key_part(value: Any) -> str:
    if isinstance(value, TableRef):
        return value.sha256
    if isinstance(value, BaseModel):
        return config_hash(value)
    if hasattr(value, "fingerprint"):
        return value.fingerprint
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_key_part(v) for v in value) + "]"
    if value is None or isinstance(value, (str, int, float, bool)):
        return repr(value)
    raise TypeError(f"no cache key for a {type(value).__name__} parameter")


def stage_cache(stage: str, version: int, *, ignore: tuple[str, ...] = ("work",)) -> CachePolicy:
    """Cache policy of a stage; `ignore` names parameters that say where, not what (the work folder)."""

    def key(_context, parameters: dict[str, Any]) -> str:
        parts = [stage, str(version)] + [
            f"{name}={_key_part(value)}" for name, value in sorted(parameters.items()) if name not in ignore
        ]
        return f"{stage}-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    return CachePolicy.from_cache_key_fn(key)


def result_storage(store: Path) -> LocalFileSystem:
    """Persisted results live in the store (`<store>/.cache/prefect-results`), one saved block per store."""
    basepath = str((store / ".cache" / "prefect-results").resolve())
    block = LocalFileSystem(basepath=basepath)
    block.save(f"prefmill-results-{hashlib.sha256(basepath.encode()).hexdigest()[:12]}", overwrite=True)
    return block


def _out(work: str, stage: str, ref_parts: list[Any]) -> Path:
    digest = hashlib.sha256("|".join(_key_part(p) for p in ref_parts).encode()).hexdigest()[:24]
    return Path(work) / stage / f"{digest}.parquet"


@task(name="load-prompts")
def load_prompts_task(source: SourceConfig, *, work: str) -> TableRef:
    """Not cached: the source is re-read every run, so an edited prompt file is noticed."""
    prompts = load_prompts(source)
    get_run_logger().info("load-prompts: %d prompts from %s", prompts.height, source.path)
    staged = write_table(prompts, Path(work) / "prompts" / "latest.parquet", schema=PROMPTS, where="prompts")
    final = Path(work) / "prompts" / f"{staged.sha256[:24]}.parquet"
    Path(staged.path).replace(final)
    return TableRef(str(final), staged.rows, staged.sha256)


@task(name="generate", cache_policy=stage_cache("generate", generate_stage.STAGE_VERSION), persist_result=True)
def generate_task(
    prompts: TableRef, *, start: int, size: int, cfg, engine: Engine, work: str, chunks: int = 1
) -> TableRef:
    """One checkpointed chunk: prompts[start:start+size], all sent to the engine in one call."""
    logger = get_run_logger()
    chunk = prompts.read().slice(start, size)
    logger.info("generate: %d prompts x %d samples (chunk starting at row %d)", chunk.height, cfg.n, start)
    samples = generate_stage.generate(chunk, engine=engine, cfg=cfg)
    ref = write_table(samples, _out(work, "generate", [prompts, start, size, cfg, engine]), schema=SAMPLES, where="generate output")
    logger.info("generate: %d samples, %d tokens", samples.height, int(samples["num_tokens"].sum()))
    return ref


@task(name="concat", cache_policy=stage_cache("concat", 1), persist_result=True)
def concat_task(parts: list[TableRef], *, work: str) -> TableRef:
    frame = pl.concat([p.read() for p in parts], how="vertical") if parts else pl.DataFrame()
    return write_table(frame, _out(work, "samples", [parts]), schema=SAMPLES, where="generate output")


@task(name="verify", cache_policy=stage_cache("verify", verify_stage.STAGE_VERSION), persist_result=True)
def verify_task(samples: TableRef, prompts: TableRef, *, cfg, work: str) -> TableRef:
    verified = verify_stage.verify(samples.read(), prompts.read(), cfg=cfg)
    get_run_logger().info("verify: %d of %d samples correct", int(verified["correct"].sum()), verified.height)
    return write_table(verified, _out(work, "verify", [samples, prompts, cfg]), schema=VERIFIED, where="verify output")


@task(name="pairs", cache_policy=stage_cache("pairs", pairs_stage.STAGE_VERSION), persist_result=True)
def pairs_task(verified: TableRef, prompts: TableRef, *, cfg, work: str) -> TableRef:
    """All prompts with `keep`/`drop_reason`; the publish step writes the kept ones as `pairs`."""
    outcomes = pairs_stage.build_pairs(verified.read(), prompts.read(), cfg=cfg)
    get_run_logger().info("pairs: %d of %d prompts paired", int(outcomes["keep"].sum()), outcomes.height)
    return write_table(outcomes, _out(work, "pairs", [verified, prompts, cfg]), where="pairs output")

@task(name="publish")
def publish_task(
    verified: TableRef, pair_outcomes: TableRef, *, store: str, dataset: str, config: dict[str, Any], engine: str
) -> dict[str, Any]:
    """Write the version (`samples`, `pairs`) with its manifest; identical content reuses the latest."""
    samples = verified.read()
    outcomes = pair_outcomes.read()
    tables = {
        "samples": conform(samples, VERIFIED, where="samples"),
        "pairs": conform(outcomes.filter(pl.col("keep")), PAIRS, where="pairs"),
    }
    stats = {"samples": sample_stats(samples), "pairs": pair_stats(outcomes)}
    version = publish_version(
        Path(store), dataset, tables, config=config, info={"engine": engine, "stats": stats}
    )
    get_run_logger().info(
        "publish: %s %s (%s)", dataset, version.name, "new" if version.created else "unchanged, already published"
    )
    return {"dataset": dataset, "version": version.name, "path": str(version.path), "created": version.created, "stats": stats}
