"""Preference recipe: decontaminate prompts, sample n answers each (ReFT, Self-Consistency), verify
them against the reference, vote (Self-Consistency), let a judge score them (Critique Ability,
UltraFeedback), pair them by a strategy (Curry-DPO, SPIN, Temporal Self-Rewarding), judge pairs in
both orders (Fair Evaluators), keep the self-consistent ones (SCIR, CREAM), add self-edited subtle
errors as hard negatives (RISE), and publish a version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from prefmill.config import RunConfig, validate_config
from prefmill.flows.artifacts import preference_artifacts
from prefmill.flows.publish import publish_task
from prefmill.flows.sampling import engine_or_policy, sample_and_verify
from prefmill.flows.stages import (
    filters_task,
    judge_pairwise_task,
    judge_pointwise_task,
    mix_rise_task,
    pairs_task,
    rise_task,
    vote_task,
)
from prefmill.refs import TableRef
from prefmill.store import read_manifest, version_names
from prefmill.tasks.preference.version import preference_version


@flow(name="preference", description=__doc__)
def preference(config: dict[str, Any], store: str = "store") -> dict[str, Any]:
    cfg: RunConfig = validate_config(config, origin="flow parameter `config`")
    sampled = sample_and_verify(cfg, store)
    prompts, samples, engine, work = sampled.prompts, sampled.samples, sampled.engine, sampled.work
    judge_engine = engine_or_policy(cfg.judge.engine, engine)

    votes = None
    if cfg.vote.enabled:
        samples, votes = vote_task(samples, cfg=cfg.vote, verify_cfg=cfg.verify, work=work)
    if cfg.judge.pointwise:
        samples = judge_pointwise_task(samples, cfg=cfg.judge, engine=judge_engine, work=work)

    parent, parent_version = _parent_samples(sampled.root, cfg)
    candidates = pairs_task(samples, prompts, votes, parent, cfg=cfg.pairs, parent_version=parent_version, work=work)
    verdicts = judge_pairwise_task(candidates, cfg=cfg.judge, engine=judge_engine, work=work) if cfg.judge.pairwise else None
    kept = filters_task(candidates, verdicts, samples, parent, cfg=cfg.filters, pairs_cfg=cfg.pairs, work=work)

    edits = None
    if cfg.rise.enabled:  # RISE: self-edited subtle errors as hard negatives, mixed with the sampled pairs
        editor = engine_or_policy(cfg.rise.engine, engine) if cfg.rise.editor == "llm" else None
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


def _parent_samples(root: Path, cfg: RunConfig) -> tuple[TableRef | None, str | None]:
    """The latest version's samples, when a strategy or filter compares with the previous iteration."""
    if cfg.pairs.strategy != "anchored" and cfg.filters.cream == "off":
        return None, None
    names = version_names(root, cfg.dataset)
    if not names:
        return None, None
    manifest = read_manifest(root, cfg.dataset, names[-1])
    rel = "data/samples/train-00000-of-00001.parquet"
    info = manifest["files"][rel]
    return TableRef(str(root / cfg.dataset / names[-1] / rel), info["rows"], info["sha256"], info.get("bytes", -1)), names[-1]
