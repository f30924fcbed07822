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

from prefmill.config import RunConfig, SourceConfig, config_hash
from prefmill.engines.base import Engine
from prefmill.refs import TableRef, write_table
from prefmill.schemas.tables import PAIRS, PROMPTS, SAMPLES, SCORED, VERIFIED, VOTES
from prefmill.schemas.validate import conform
from prefmill.sources import load_prompts, read_table
from prefmill.store import publish_version
from prefmill.tasks import consistency as consistency_stage
from prefmill.tasks import decontaminate as decontaminate_stage
from prefmill.tasks import filters as filters_stage
from prefmill.tasks import generate as generate_stage
from prefmill.tasks import judge as judge_stage
from prefmill.tasks import pairs as pairs_stage
from prefmill.tasks import rise as rise_stage
from prefmill.tasks import verify as verify_stage
from prefmill.tasks.stats import decontamination_stats, pair_stats, rise_stats, sample_stats, vote_stats


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


def stage_output(work: str, stage: str, ref_parts: list[Any]) -> Path:
    """Where a stage writes its Parquet: named by the content of what it was computed from."""
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
    ref = write_table(samples, stage_output(work, "generate", [prompts, start, size, cfg, engine]), schema=SAMPLES, where="generate output")
    logger.info("generate: %d samples, %d tokens", samples.height, int(samples["num_tokens"].sum()))
    return ref


@task(name="concat", cache_policy=stage_cache("concat", 1), persist_result=True)
def concat_task(parts: list[TableRef], *, work: str) -> TableRef:
    frame = pl.concat([p.read() for p in parts], how="vertical") if parts else pl.DataFrame()
    return write_table(frame, stage_output(work, "samples", [parts]), schema=SAMPLES, where="generate output")


@task(name="verify", cache_policy=stage_cache("verify", verify_stage.STAGE_VERSION), persist_result=True)
def verify_task(samples: TableRef, prompts: TableRef, *, cfg, work: str) -> TableRef:
    verified = verify_stage.verify(samples.read(), prompts.read(), cfg=cfg)
    get_run_logger().info("verify: %d of %d samples correct", int(verified["correct"].sum()), verified.height)
    return write_table(verified, stage_output(work, "verify", [samples, prompts, cfg]), schema=VERIFIED, where="verify output")


@task(name="decontaminate", cache_policy=stage_cache("decontaminate", decontaminate_stage.STAGE_VERSION), persist_result=True)
def decontaminate_task(prompts: TableRef, evals: list[TableRef], *, cfg, work: str) -> tuple[TableRef, TableRef]:
    """(kept prompts, every prompt with `overlap`/`keep`/`drop_reason`)."""
    index = decontaminate_stage.eval_index(
        (q for ref in evals for q in read_table(ref.path)[cfg.field].drop_nulls()), n=cfg.ngram
    )
    checked = decontaminate_stage.decontaminate(prompts.read(), index, cfg=cfg)
    dropped = checked.height - int(checked["keep"].sum())
    get_run_logger().info("decontaminate: %d of %d prompts overlap the eval sets, dropped", dropped, checked.height)
    parts = [prompts, evals, cfg]
    kept = write_table(checked.filter(pl.col("keep")), stage_output(work, "decontaminated", parts), schema=PROMPTS, where="prompts")
    return kept, write_table(checked, stage_output(work, "decontamination", parts), where="decontamination")


@task(name="vote", cache_policy=stage_cache("vote", consistency_stage.STAGE_VERSION), persist_result=True)
def vote_task(samples: TableRef, *, cfg, verify_cfg, work: str) -> tuple[TableRef, TableRef]:
    """(samples with answer classes, one vote row per prompt)."""
    voted, votes = consistency_stage.vote(samples.read(), cfg=cfg, timeout_seconds=verify_cfg.timeout_seconds)
    get_run_logger().info("vote: %d prompts, mean vote share %.2f", votes.height, votes["vote_share"].mean() or 0)
    parts = [samples, cfg, verify_cfg]
    return (
        write_table(voted, stage_output(work, "voted", parts), where="vote output"),
        write_table(votes, stage_output(work, "votes", parts), schema=VOTES, where="votes"),
    )


@task(name="judge-pointwise", cache_policy=stage_cache("judge-pointwise", judge_stage.STAGE_VERSION), persist_result=True)
def judge_pointwise_task(samples: TableRef, *, cfg, engine: Engine, work: str) -> TableRef:
    """Rubric scores for every usable sample, joined back onto all samples."""
    frame = samples.read()
    usable = frame.filter(pl.col("error").is_null() & (pl.col("completion").str.strip_chars() != ""))
    judged = judge_stage.judge_pointwise(usable, engine=engine, cfg=cfg)
    get_run_logger().info("judge-pointwise: %d samples, %d unparsable outputs", judged.height, int(judged["judge_parse_failures"].sum()))
    merged = frame.join(judged.drop("judge_engine", strict=False), on="sample_id", how="left", maintain_order="left")
    return write_table(merged, stage_output(work, "judge-pointwise", [samples, cfg, engine]), where="judge output")


@task(name="pairs", cache_policy=stage_cache("pairs", pairs_stage.STAGE_VERSION), persist_result=True)
def pairs_task(
    samples: TableRef, prompts: TableRef, votes: TableRef | None, parent: TableRef | None,
    *, cfg, parent_version: str | None, work: str,
) -> TableRef:
    """Every candidate pair with `keep`/`drop_reason`; the publish step writes the kept ones."""
    outcomes = pairs_stage.build_pairs(
        samples.read(), prompts.read(), cfg=cfg, votes=votes.read() if votes else None,
        parent_samples=parent.read() if parent else None, parent_version=parent_version,
    )
    get_run_logger().info("pairs (%s): %d kept of %d candidates", cfg.strategy, int(outcomes["keep"].sum()), outcomes.height)
    return write_table(outcomes, stage_output(work, "pairs", [samples, prompts, votes, parent, cfg]), where="pairs output")


@task(name="judge-pairwise", cache_policy=stage_cache("judge-pairwise", judge_stage.STAGE_VERSION), persist_result=True)
def judge_pairwise_task(pairs: TableRef, *, cfg, engine: Engine, work: str) -> TableRef:
    """Both orders for every kept pair; verdicts per pair."""
    kept = pairs.read().filter(pl.col("keep"))
    verdicts = judge_stage.judge_pairwise(kept, engine=engine, cfg=cfg)
    get_run_logger().info("judge-pairwise: %d pairs, %d swap-consistent", verdicts.height, int(verdicts["swap_consistent"].sum() or 0))
    return write_table(verdicts, stage_output(work, "judge-pairwise", [pairs, cfg, engine]), where="pairwise judge output")


@task(name="filters", cache_policy=stage_cache("filters", filters_stage.STAGE_VERSION), persist_result=True)
def filters_task(
    pairs: TableRef, verdicts: TableRef | None, samples: TableRef, parent: TableRef | None,
    *, cfg, pairs_cfg, work: str,
) -> TableRef:
    consistency = None
    if parent is not None and cfg.cream != "off":
        consistency = filters_stage.cream_consistency(
            pairs_stage.sample_scores(samples.read(), cfg=pairs_cfg), pairs_stage.sample_scores(parent.read(), cfg=pairs_cfg)
        )
    filtered = filters_stage.apply_filters(
        pairs.read(), cfg=cfg, judged=verdicts.read() if verdicts else None, consistency=consistency
    )
    get_run_logger().info("filters: %d pairs kept", int(filtered["keep"].sum()))
    return write_table(filtered, stage_output(work, "filters", [pairs, verdicts, samples, parent, cfg, pairs_cfg]), where="filters output")


@task(name="rise", cache_policy=stage_cache("rise", rise_stage.STAGE_VERSION), persist_result=True)
def rise_task(samples: TableRef, prompts: TableRef, *, cfg, verify_cfg, engine: Engine | None, work: str) -> TableRef:
    """Every RISE edit of the correct solutions, with `keep`/`drop_reason`."""
    edits = rise_stage.inject(samples.read(), prompts.read(), engine=engine, cfg=cfg, verify_cfg=verify_cfg)
    counts = rise_stats(edits)
    get_run_logger().info(
        "rise (%s, %s): %d of %d edits kept; dropped %s", cfg.editor, cfg.mode, counts["kept"], counts["edits"], counts["dropped"]
    )
    return write_table(edits, stage_output(work, "rise", [samples, prompts, cfg, verify_cfg, engine]), where="rise output")


@task(name="mix-rise", cache_policy=stage_cache("mix-rise", rise_stage.STAGE_VERSION), persist_result=True)
def mix_rise_task(pairs: TableRef, edits: TableRef, votes: TableRef | None, *, cfg, work: str) -> TableRef:
    """Sampled pair outcomes plus the RISE pairs, at most `rise.ratio` RISE pairs per kept sampled pair."""
    rise = rise_stage.rise_pairs(edits.read(), votes=votes.read() if votes else None)
    mixed = rise_stage.mix_pairs(pairs.read(), rise, ratio=cfg.ratio)
    get_run_logger().info("mix-rise: %d RISE pairs kept of %d", int(mixed.filter(pl.col("strategy") == "rise")["keep"].sum()), rise.height)
    return write_table(mixed, stage_output(work, "mix-rise", [pairs, edits, votes, cfg]), where="mixed pairs")


@task(name="publish")
def publish_task(
    samples: TableRef, pairs: TableRef, votes: TableRef | None, decontamination: TableRef | None,
    *, store: str, dataset: str, config: RunConfig, engine: str, rise: TableRef | None = None,
) -> dict[str, Any]:
    """Write the version (`samples`, `pairs`, `votes`) with its manifest; identical content reuses the latest."""
    scored = pairs_stage.sample_scores(samples.read(), cfg=config.pairs)
    outcomes = pairs.read()
    kept = outcomes.filter(pl.col("keep"))
    tables = {
        "samples": conform(scored, SCORED, where="samples", fill_nullable=True),
        "pairs": conform(rise_stage.with_rise_columns(kept), PAIRS, where="pairs"),
    }
    stats = {"samples": sample_stats(scored), "pairs": pair_stats(outcomes)}
    if votes is not None:
        vote_rows = votes.read()
        tables["votes"] = conform(vote_rows, VOTES, where="votes")
        stats["votes"] = vote_stats(vote_rows)
    if rise is not None:
        stats["rise"] = rise_stats(rise.read(), outcomes)
    if decontamination is not None:
        stats["decontamination"] = decontamination_stats(decontamination.read())
    version = publish_version(
        Path(store), dataset, tables, config=config.model_dump(mode="json"), info={"engine": engine, "stats": stats}
    )
    get_run_logger().info(
        "publish: %s %s (%s)", dataset, version.name, "new" if version.created else "unchanged, already published"
    )
    return {"dataset": dataset, "version": version.name, "path": str(version.path), "created": version.created, "stats": stats}
