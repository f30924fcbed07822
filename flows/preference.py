"""Preference recipe: decontaminate prompts, sample n answers each (ReFT, Self-Consistency), verify
them against the reference, vote (Self-Consistency), let a judge score them (Critique Ability,
UltraFeedback), pair them by a strategy (Curry-DPO, SPIN, Temporal Self-Rewarding), judge pairs in
both orders (Fair Evaluators), keep the self-consistent ones (SCIR, CREAM), add self-edited subtle
errors as hard negatives (RISE), and publish a version."""

from __future__ import annotations

from typing import Any

from prefect import flow

from prefmill.config import EngineConfig, RunConfig, validate_config
from prefmill.engines import engine_for
from prefmill.engines.cached import CachingEngine
from prefmill.errors import ConfigError
from prefmill.flows.artifacts import preference_artifacts
from prefmill.flows.gpu import GpuSlot
from prefmill.flows.publish import publish_task
from prefmill.flows.sampling import Sampled, engine_or_policy, sample_and_verify
from prefmill.flows.stages import (
    cream_judge_task,
    filters_task,
    judge_pairwise_task,
    judge_pointwise_task,
    mix_rise_task,
    pairs_task,
    rise_task,
    vote_task,
)
from prefmill.refs import TableRef
from prefmill.store import first_iteration, previous_iteration, read_manifest
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

    anchor, anchor_version = _anchor(sampled, cfg) if cfg.pairs.strategy == "anchored" else (None, None)
    candidates = pairs_task(samples, prompts, votes, anchor, cfg=cfg.pairs, parent_version=anchor_version, work=work)
    verdicts = judge_pairwise_task(candidates, cfg=cfg.judge, engine=judge_engine, work=work) if cfg.judge.pairwise else None
    now = before = previous = None  # CREAM: this iteration's responses scored by both iterations' judges
    if cfg.filters.cream != "off" and (previous := previous_iteration(sampled.root, cfg.dataset, engine.fingerprint)):
        now, before = cream_judge_task(samples, _samples_of(sampled, cfg, previous), cfg=cfg.judge, work=work,
                                       previous_judge=_previous_judge(sampled, cfg, previous), current_judge=judge_engine)
    kept = filters_task(candidates, verdicts, samples, now, before, cfg=cfg.filters, pairs_cfg=cfg.pairs,
                        cream_version=previous, work=work)

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


def _samples_of(sampled: Sampled, cfg: RunConfig, version: str) -> TableRef:
    """The published samples of `version`, checked against its manifest when read."""
    rel = "data/samples/train-00000-of-00001.parquet"
    info = read_manifest(sampled.root, cfg.dataset, version)["files"][rel]
    return TableRef(str(sampled.root / cfg.dataset / version / rel), info["rows"], info["sha256"], info.get("bytes", -1))


def _anchor(sampled: Sampled, cfg: RunConfig) -> tuple[TableRef | None, str | None]:
    """Temporal Self-Rewarding's anchor: the lineage's first version, unless this run's model made it
    (then this run is the initial model, there is nothing older to anchor to: `no_parent_sample`)."""
    first = first_iteration(sampled.root, cfg.dataset)
    if first is None or read_manifest(sampled.root, cfg.dataset, first).get("engine") == sampled.engine.fingerprint:
        return None, None
    return _samples_of(sampled, cfg, first), first


def _previous_judge(sampled: Sampled, cfg: RunConfig, version: str) -> CachingEngine:
    """The previous iteration's judge behind the run's rollout cache: `filters.cream_judge`, else the
    engine `version`'s manifest recorded (`config.judge.engine`, else `config.engine`)."""
    judge_cfg = cfg.filters.cream_judge
    if judge_cfg is None:
        recorded = read_manifest(sampled.root, cfg.dataset, version).get("config", {})
        try:
            judge_cfg = EngineConfig.model_validate((recorded.get("judge") or {}).get("engine") or recorded["engine"])
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"CREAM: cannot rebuild the judge of {cfg.dataset} {version} from its manifest: {exc}",
                              hint="name it in filters.cream_judge") from None
    frame = sampled.prompts.read()
    return CachingEngine(GpuSlot(engine_for(judge_cfg, references=dict(zip(frame["question"], frame["reference"])))),
                         sampled.engine.cache)
