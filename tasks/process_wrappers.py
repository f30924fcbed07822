"""Thin Prefect tasks of the process-supervision flow (flows/process.py); caching as in wrappers.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
from prefect import task
from prefect.logging import get_run_logger

from prefmill.config import RunConfig
from prefmill.engines.base import Engine
from prefmill.refs import TableRef, write_table
from prefmill.schemas.tables import SCORED, STEP_PAIRS, STEPS
from prefmill.schemas.validate import conform
from prefmill.store import publish_version
from prefmill.tasks import chains as chains_stage
from prefmill.tasks import consensus as consensus_stage
from prefmill.tasks import mc_label as mc_stage
from prefmill.tasks import omegaprm as omega_stage
from prefmill.tasks import step_pairs as step_pairs_stage
from prefmill.tasks.stats import sample_stats, step_stats
from prefmill.tasks.wrappers import stage_cache, stage_output


@task(name="chains", cache_policy=stage_cache("chains", chains_stage.STAGE_VERSION), persist_result=True)
def chains_task(samples: TableRef, prompts: TableRef, *, cfg, generate_cfg, work: str) -> TableRef:
    chains = chains_stage.build_chains(samples.read(), prompts.read(), cfg=cfg, generate_cfg=generate_cfg)
    get_run_logger().info("chains: %d of %d chains to label", int(chains["keep"].sum()), chains.height)
    return write_table(chains, stage_output(work, "chains", [samples, prompts, cfg, generate_cfg]), where="chains")


@task(name="mc-label", cache_policy=stage_cache("mc-label", mc_stage.STAGE_VERSION), persist_result=True)
def mc_label_task(chains: TableRef, prompts: TableRef, *, cfg, verify_cfg, engine: Engine, work: str) -> TableRef:
    """Math-Shepherd: every step prefix of every kept chain, k rollouts, one engine call."""
    kept = chains.read().filter(pl.col("keep"))
    labelled = mc_stage.mc_label(
        kept, prompts.read().select("prompt_id", "reference"), engine=engine, rollouts=cfg.rollouts,
        max_tokens=cfg.max_tokens, temperature=cfg.temperature, seed=cfg.seed, verify_cfg=verify_cfg,
    )
    get_run_logger().info(
        "mc-label: %d chains, %d rollout tokens", labelled.height, int(labelled["rollout_tokens"].sum() or 0)
    )
    return write_table(labelled, stage_output(work, "mc-label", [chains, prompts, cfg, verify_cfg, engine]), where="mc labels")


def omega_config(cfg) -> omega_stage.OmegaConfig:
    return omega_stage.OmegaConfig(
        rollouts_per_check=cfg.rollouts, budget=cfg.budget, max_tokens=cfg.max_tokens,
        temperature=cfg.temperature, seed=cfg.seed,
    )


@task(name="omegaprm", cache_policy=stage_cache("omegaprm", omega_stage.STAGE_VERSION), persist_result=True)
def omega_task(chains: TableRef, prompts: TableRef, *, cfg, verify_cfg, engine: Engine, work: str) -> TableRef:
    """OmegaPRM with one checkpoint file a question: a rerun after a crash (even kill -9) loads the
    finished questions and searches only the rest."""
    logger = get_run_logger()
    parts = [chains, prompts, cfg, verify_cfg, engine]
    checkpoints = stage_output(work, "omegaprm-questions", parts).with_suffix("")
    checkpoints.mkdir(parents=True, exist_ok=True)
    done = {f.stem: json.loads(f.read_text()) for f in checkpoints.glob("*.json")}
    if done:
        logger.info("omegaprm: %d questions already searched, resuming after them", len(done))

    def checkpoint(prompt_id: str, result: dict) -> None:
        tmp = checkpoints / f".{prompt_id}.json.tmp"
        tmp.write_text(json.dumps(result))
        tmp.replace(checkpoints / f"{prompt_id}.json")
        logger.info("omegaprm: question %s searched (%d rollouts)", prompt_id, result.get("rollouts", 0))

    labelled = omega_stage.omega_label(
        chains.read().filter(pl.col("keep")), prompts.read().select("prompt_id", "reference"),
        engine=engine, cfg=omega_config(cfg), verify_cfg=verify_cfg, done=done, on_question_done=checkpoint,
    )
    if cfg.balance:
        labelled = omega_stage.balance(labelled, seed=cfg.seed).filter(pl.col("keep")).drop("keep", "drop_reason")
    return write_table(labelled, stage_output(work, "omegaprm", parts), where="omegaprm labels")


@task(name="consensus", cache_policy=stage_cache("consensus", consensus_stage.STAGE_VERSION), persist_result=True)
def consensus_task(labelled: TableRef, *, cfg, engine: Engine, work: str) -> TableRef:
    """An LLM judge names each chain's first wrong step; keep the labels where it agrees with MC."""
    frame = labelled.read()
    judged = consensus_stage.judge_first_errors(frame, engine=engine, cfg=cfg)
    filtered = consensus_stage.consensus(frame, judged)
    get_run_logger().info("consensus: %d of %d chains agree with the judge", int(filtered["keep"].sum()), filtered.height)
    return write_table(filtered, stage_output(work, "consensus", [labelled, cfg, engine]), where="consensus")


@task(name="publish-steps")
def publish_steps_task(
    samples: TableRef, prompts: TableRef, chains: TableRef, labelled: TableRef,
    *, store: str, dataset: str, config: RunConfig, engine: str, cache: dict[str, int],
) -> dict[str, Any]:
    """Write `steps` (TRL stepwise supervision) and `samples`; chains without a label on every step stay out."""
    questions = prompts.read().select("prompt_id", pl.col("question").alias("question"))
    rows = labelled.read().join(questions, on="prompt_id", how="left", maintain_order="left")
    consensus_stats = None
    if "keep" in rows.columns:  # the consensus judge ran
        consensus_stats = consensus_stage.consensus_stats(rows)
        rows = rows.filter(pl.col("keep"))
    complete = rows.filter(
        pl.col("labels").list.len().gt(0) & pl.col("labels").list.eval(pl.element().is_not_null()).list.all()
    )
    steps = complete.with_columns(prompt=pl.col("question"))
    if "judge_first_error" not in steps.columns:
        steps = steps.with_columns(judge_first_error=pl.lit(None, pl.Int32))
    scored = samples.read()
    pairs, pair_counts = step_pairs_stage.step_pairs(complete)
    tables = {
        "samples": conform(scored, SCORED, where="samples", fill_nullable=True),
        "steps": conform(steps, STEPS, where="steps", fill_nullable=True),
        "step_pairs": conform(step_pairs_stage.merge_prefix(pairs), STEP_PAIRS, where="step_pairs"),
    }
    stats = {
        "samples": sample_stats(scored),
        "steps": step_stats(chains.read(), rows, steps) | {"rollout_cache": cache},
        "step_pairs": pair_counts,
    }
    if consensus_stats is not None:
        stats["consensus"] = consensus_stats
    version = publish_version(
        Path(store), dataset, tables, config=config.model_dump(mode="json"), info={"engine": engine, "stats": stats}
    )
    get_run_logger().info("publish: %s %s (%s)", dataset, version.name, "new" if version.created else "unchanged")
    return {"dataset": dataset, "version": version.name, "path": str(version.path), "created": version.created, "stats": stats}
