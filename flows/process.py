"""Process-supervision recipe: sample solutions, split them into steps, label the steps by
Monte-Carlo rollouts from their prefixes (Math-Shepherd) or by OmegaPRM's binary search for the first
error, through a persisted rollout cache; keep labels an LLM judge agrees with (The Lessons of
Developing PRMs); publish TRL stepwise supervision (`steps`) and step-level pairs (`step_pairs`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact

from prefmill import progress
from prefmill.config import RunConfig, validate_config
from prefmill.engines import engine_for
from prefmill.engines.cached import CachingEngine, RolloutCache
from prefmill.flows.preference import _cached, _file_ref
from prefmill.tasks.process_wrappers import (
    chains_task,
    consensus_task,
    mc_label_task,
    omega_task,
    publish_steps_task,
)
from prefmill.tasks.wrappers import (
    concat_task,
    decontaminate_task,
    generate_task,
    load_prompts_task,
    result_storage,
    verify_task,
)


@flow(name="process", description=__doc__)
def process(config: dict[str, Any], store: str = "store") -> dict[str, Any]:
    cfg: RunConfig = validate_config(config, origin="flow parameter `config`")
    root = Path(store)
    work = str((root / ".cache" / cfg.dataset).resolve())
    storage = result_storage(root)
    decontaminate, generate, concat, verify, chains_of, mc_label, omegaprm, consensus = (
        _cached(t.with_options(result_storage=storage))
        for t in (decontaminate_task, generate_task, concat_task, verify_task, chains_task, mc_label_task,
                  omega_task, consensus_task)
    )

    prompts = load_prompts_task(cfg.source, work=work)
    if cfg.decontamination.enabled:
        evals = [_file_ref(path) for path in cfg.decontamination.eval_files]
        prompts, _ = decontaminate(prompts, evals, cfg=cfg.decontamination, work=work)
    frame = prompts.read()
    policy = engine_for(cfg.engine, references=dict(zip(frame["question"], frame["reference"])))
    engine = CachingEngine(policy, RolloutCache(root / ".cache" / "rollouts"))

    size = cfg.generate.chunk_size
    chunks = []
    for start in range(0, prompts.rows, size):
        chunks.append(generate(prompts, start=start, size=size, cfg=cfg.generate, engine=engine, work=work))
        progress.report("generate", min(start + size, prompts.rows), prompts.rows)
    samples = verify(concat(chunks, work=work), prompts, cfg=cfg.verify, work=work)

    chains = chains_of(samples, prompts, cfg=cfg.process, generate_cfg=cfg.generate, work=work)
    label = omegaprm if cfg.process.method == "omegaprm" else mc_label
    labelled = label(chains, prompts, cfg=cfg.process, verify_cfg=cfg.verify, engine=engine, work=work)
    if cfg.process.consensus:
        judge = engine_for(cfg.judge.engine) if cfg.judge.engine else engine
        labelled = consensus(labelled, cfg=cfg.judge, engine=judge, work=work)

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
