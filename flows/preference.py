"""Preference recipe: decontaminate prompts, sample n answers each (ReFT, Self-Consistency), verify
them against the reference, vote (Self-Consistency), let a judge score them (Critique Ability,
UltraFeedback), pair them by a strategy (Curry-DPO, SPIN, Temporal Self-Rewarding), judge pairs in
both orders (Fair Evaluators), keep the self-consistent ones (SCIR, CREAM), add self-edited subtle
errors as hard negatives (RISE), and publish a version."""

from __future__ import annotations

from typing import Any

from prefect import flow

from prefmill.config import RunConfig, validate_config
from prefmill.flows.artifacts import preference_artifacts
from prefmill.flows.lineage import anchor_samples, future_samples, previous_judge, samples_of
from prefmill.flows.publish import publish_task
from prefmill.flows.sampling import engine_or_policy, sample_and_verify
from prefmill.flows.stages import (
    cream_judge_task,
    filters_task,
    judge_pairwise_task,
    judge_pointwise_task,
    mix_rise_task,
    pairs_task,
    rejudge_task,
    rise_task,
    vote_task,
)
from prefmill.store import previous_iteration
from prefmill.tasks.preference.version import preference_version


@flow(name="preference", description=__doc__)
def preference(config: dict[str, Any], store: str = "store") -> dict[str, Any]:
    cfg: RunConfig = validate_config(config, origin="flow parameter `config`")
    sampled = sample_and_verify(cfg, store)
    prompts, samples, engine, work = sampled.prompts, sampled.samples, sampled.engine, sampled.work
    judge_engine = engine_or_policy(cfg.judge.engine, engine, runner=cfg.runner)

    votes = None
    if cfg.vote.enabled:
        samples, votes = vote_task(samples, cfg=cfg.vote, verify_cfg=cfg.verify, work=work)
    if cfg.judge.pointwise:
        samples = judge_pointwise_task(samples, cfg=cfg.judge, engine=judge_engine, work=work)

    anchor, anchor_version = anchor_samples(sampled, cfg) if cfg.pairs.strategy == "anchored" else (None, None)
    future, future_version = future_samples(sampled, cfg) if cfg.pairs.future_version else (None, None)
    if future is not None and anchor is not None and cfg.judge.pointwise:  # no anchor: no pair to choose for
        future = rejudge_task(future, cfg=cfg.judge, engine=judge_engine, work=work)
    candidates = pairs_task(samples, prompts, votes, anchor, future, cfg=cfg.pairs, parent_version=anchor_version,
                            future_version=future_version, work=work)
    verdicts = judge_pairwise_task(candidates, cfg=cfg.judge, engine=judge_engine, work=work) if cfg.judge.pairwise else None
    now = before = previous = None  # CREAM: this iteration's responses scored by both iterations' judges
    if cfg.filters.cream != "off" and (previous := previous_iteration(sampled.root, cfg.dataset, engine.fingerprint)):
        now, before = cream_judge_task(samples, samples_of(sampled, cfg, previous), cfg=cfg.judge, work=work,
                                       previous_judge=previous_judge(sampled, cfg, previous), current_judge=judge_engine)
    kept = filters_task(candidates, verdicts, samples, now, before, cfg=cfg.filters, pairs_cfg=cfg.pairs,
                        cream_version=previous, work=work)

    edits = None
    if cfg.rise.enabled:  # RISE: self-edited subtle errors as hard negatives, mixed with the sampled pairs
        editor = engine_or_policy(cfg.rise.engine, engine, runner=cfg.runner) if cfg.rise.editor == "llm" else None
        edits = rise_task(samples, prompts, cfg=cfg.rise, verify_cfg=cfg.verify, engine=editor, work=work)
        kept = mix_rise_task(kept, edits, votes, cfg=cfg.rise, work=work)

    version = publish_task(
        preference_version,
        {"samples": samples, "pairs": kept, "votes": votes, "decontamination": sampled.decontamination, "edits": edits},
        options={"pairs_cfg": cfg.pairs}, store=str(sampled.root), dataset=cfg.dataset, config=cfg,
        engine=engine.fingerprint,
    )
    preference_artifacts(cfg, prompts.rows, version)
    return version
