"""Process-supervision recipe: sample solutions, split them into steps, label the steps by
Monte-Carlo rollouts from their prefixes (Math-Shepherd) or by OmegaPRM's binary search for the first
error, through a persisted rollout cache; keep labels an LLM judge agrees with (The Lessons of
Developing PRMs); publish TRL stepwise supervision (`steps`) and step-level pairs (`step_pairs`)."""

from __future__ import annotations

from typing import Any

from prefect import flow

from prefmill.config import RunConfig, validate_config
from prefmill.flows.artifacts import process_artifacts
from prefmill.flows.publish import publish_task
from prefmill.flows.sampling import engine_or_policy, sample_and_verify
from prefmill.flows.stages import balance_task, chains_task, consensus_task, mc_label_task, omegaprm_task
from prefmill.tasks.process.version import process_version


@flow(name="process", description=__doc__)
def process(config: dict[str, Any], store: str = "store") -> dict[str, Any]:
    cfg: RunConfig = validate_config(config, origin="flow parameter `config`")
    sampled = sample_and_verify(cfg, store)
    prompts, samples, engine, work = sampled.prompts, sampled.samples, sampled.engine, sampled.work

    chains = chains_task(samples, prompts, cfg=cfg.process, generate_cfg=cfg.generate, work=work)
    label = omegaprm_task if cfg.process.method == "omegaprm" else mc_label_task
    labelled = label(chains, prompts, cfg=cfg.process, verify_cfg=cfg.verify, engine=engine, work=work)
    if cfg.process.consensus:
        judge = engine_or_policy(cfg.judge.engine, engine, runner=cfg.runner)
        labelled = consensus_task(labelled, chains, cfg=cfg.judge, engine=judge, work=work)
    if cfg.process.balance:  # last, so the published labels stay balanced
        labelled = balance_task(labelled, seed=cfg.process.seed, work=work)

    version = publish_task(
        process_version, {"samples": samples, "prompts": prompts, "chains": chains, "labelled": labelled},
        options={"rollout_cache": sampled.cache_stats(), "consensus": cfg.process.consensus}, store=str(sampled.root), dataset=cfg.dataset, config=cfg,
        engine=engine.fingerprint,
    )
    process_artifacts(cfg, prompts.rows, version)
    return version
