"""Process-supervision recipe: sample solutions, split them into steps, label the steps by
Monte-Carlo rollouts from their prefixes (Math-Shepherd) or by OmegaPRM's binary search for the first
error, through a persisted rollout cache; keep labels an LLM judge agrees with (The Lessons of
Developing PRMs); publish TRL stepwise supervision (`steps`) and step-level pairs (`step_pairs`)."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact

from prefmill.config import RunConfig, validate_config
from prefmill.flows.sampling import Stage, engine_or_policy, sample_and_verify
from prefmill.tasks.process_wrappers import (
    chains_task,
    consensus_task,
    mc_label_task,
    omega_task,
    publish_steps_task,
)


@flow(name="process", description=__doc__)
def process(config: dict[str, Any], store: str = "store") -> dict[str, Any]:
    cfg: RunConfig = validate_config(config, origin="flow parameter `config`")
    stage = Stage.of(store, cfg)
    root, work = stage.root, stage.work
    chains_of, mc_label, omegaprm, consensus = (
        stage.task(t) for t in (chains_task, mc_label_task, omega_task, consensus_task)
    )

    sampled = sample_and_verify(cfg, stage)
    prompts, samples, engine = sampled.prompts, sampled.samples, sampled.engine

    chains = chains_of(samples, prompts, cfg=cfg.process, generate_cfg=cfg.generate, work=work)
    label = omegaprm if cfg.process.method == "omegaprm" else mc_label
    labelled = label(chains, prompts, cfg=cfg.process, verify_cfg=cfg.verify, engine=engine, work=work)
    if cfg.process.consensus:
        labelled = consensus(labelled, cfg=cfg.judge, engine=engine_or_policy(cfg.judge.engine, engine), work=work)

    cache = {"hits": engine.hits, "misses": engine.misses, "entries": len(engine.cache)}
    version = publish_steps_task(
        samples, prompts, chains, labelled, store=str(root), dataset=cfg.dataset, config=cfg,
        engine=engine.fingerprint, cache=cache,
    )
    steps = version["stats"]["steps"]
    key = "".join(c if c.isalnum() else "-" for c in cfg.dataset.lower())
    create_table_artifact(
        key=f"{key}-stage-counts",
        table=[
            {"stage": "load-prompts", "rows_out": prompts.rows, "note": cfg.source.path},
            {"stage": "generate", "rows_out": version["stats"]["samples"]["samples"], "note": f"n={cfg.generate.n}"},
            {"stage": "chains", "rows_out": steps["labelled"], "note": f"dropped={steps['dropped']}"},
            {"stage": f"label ({cfg.process.method})", "rows_out": steps["published"],
             "note": f"steps +{steps['positive_steps']}/-{steps['negative_steps']}, rollout tokens={steps['rollout_tokens']}"},
            {"stage": "rollout cache", "rows_out": cache["hits"], "note": f"hits; misses={cache['misses']}"},
        ],
        description=f"{cfg.dataset} {version['version']}: rows out of each stage",
    )
    return version
