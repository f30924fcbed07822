"""Preference recipe: decontaminate prompts, sample n answers each (ReFT, Self-Consistency), verify
them against the reference, vote (Self-Consistency), let a judge score them (Critique Ability,
UltraFeedback), pair them by a strategy (Curry-DPO, SPIN, Temporal Self-Rewarding), judge pairs in
both orders (Fair Evaluators), keep the self-consistent ones (SCIR, CREAM), add self-edited subtle
errors as hard negatives (RISE), and publish a version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from prefmill.config import RunConfig, validate_config
from prefmill.flows.sampling import Stage, engine_or_policy, sample_and_verify
from prefmill.refs import TableRef
from prefmill.store import read_manifest, version_names
from prefmill.tasks.wrappers import (
    filters_task,
    judge_pairwise_task,
    judge_pointwise_task,
    mix_rise_task,
    pairs_task,
    publish_task,
    rise_task,
    vote_task,
)


@flow(name="preference", description=__doc__)
def preference(config: dict[str, Any], store: str = "store") -> dict[str, Any]:
    cfg: RunConfig = validate_config(config, origin="flow parameter `config`")
    stage = Stage.of(store, cfg)
    root, work = stage.root, stage.work
    vote, judge_pointwise, pairs, judge_pairwise, filters, rise, mix_rise = (
        stage.task(t)
        for t in (vote_task, judge_pointwise_task, pairs_task, judge_pairwise_task, filters_task, rise_task, mix_rise_task)
    )

    sampled = sample_and_verify(cfg, stage)
    prompts, samples, engine = sampled.prompts, sampled.samples, sampled.engine
    judge_engine = engine_or_policy(cfg.judge.engine, engine)

    votes = None
    if cfg.vote.enabled:
        samples, votes = vote(samples, cfg=cfg.vote, verify_cfg=cfg.verify, work=work)
    if cfg.judge.pointwise:
        samples = judge_pointwise(samples, cfg=cfg.judge, engine=judge_engine, work=work)

    parent, parent_version = _parent_samples(root, cfg)
    candidates = pairs(samples, prompts, votes, parent, cfg=cfg.pairs, parent_version=parent_version, work=work)
    verdicts = judge_pairwise(candidates, cfg=cfg.judge, engine=judge_engine, work=work) if cfg.judge.pairwise else None
    kept = filters(candidates, verdicts, samples, parent, cfg=cfg.filters, pairs_cfg=cfg.pairs, work=work)

    edits = None
    if cfg.rise.enabled:  # RISE: self-edited subtle errors as hard negatives, mixed with the sampled pairs
        editor = engine_or_policy(cfg.rise.engine, engine) if cfg.rise.editor == "llm" else None
        edits = rise(samples, prompts, cfg=cfg.rise, verify_cfg=cfg.verify, engine=editor, work=work)
        kept = mix_rise(kept, edits, votes, cfg=cfg.rise, work=work)

    version = publish_task(
        samples, kept, votes, sampled.decontamination, store=str(root), dataset=cfg.dataset, config=cfg,
        engine=engine.fingerprint, rise=edits,
    )
    _publish_artifacts(cfg, prompts.rows, version)
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
    return TableRef(str(root / cfg.dataset / names[-1] / rel), info["rows"], info["sha256"]), names[-1]


def _publish_artifacts(cfg: RunConfig, n_prompts: int, version: dict[str, Any]) -> None:
    stats = version["stats"]
    s, p = stats["samples"], stats["pairs"]
    key = "".join(c if c.isalnum() else "-" for c in cfg.dataset.lower())
    rows = [{"stage": "load-prompts", "rows_out": n_prompts, "note": cfg.source.path}]
    if "decontamination" in stats:
        d = stats["decontamination"]
        rows.append({"stage": "decontaminate", "rows_out": d["prompts"] - d["dropped"], "note": f"dropped={d['dropped']}"})
    rows += [
        {"stage": "generate", "rows_out": s["samples"], "note": f"n={cfg.generate.n}, failures={s['engine_failures']}"},
        {"stage": "verify", "rows_out": s["correct"], "note": f"correct; pass@n={s['pass_at_n']}"},
    ]
    if "votes" in stats:
        rows.append({"stage": "vote", "rows_out": stats["votes"]["prompts"], "note": f"difficulty={stats['votes']['difficulty']}"})
    if "judge" in s:
        rows.append({"stage": "judge-pointwise", "rows_out": s["judge"]["judged"], "note": f"mean score={s['judge']['mean_score']}"})
    if "rise" in stats:
        r = stats["rise"]
        rows.append({"stage": "rise", "rows_out": r["kept"], "note": f"edits kept of {r['edits']}; dropped={r['dropped']}"})
    rows.append({"stage": "pairs", "rows_out": p["pairs"], "note": f"strategy={p['strategy']}, dropped={p['dropped']}"})
    create_table_artifact(key=f"{key}-stage-counts", table=rows, description=f"{cfg.dataset} {version['version']}: rows out of each stage")
    sep = p["separability"]
    create_markdown_artifact(
        key=f"{key}-version",
        markdown=(
            f"# {cfg.dataset} {version['version']}\n\n"
            f"{'New version' if version['created'] else 'Unchanged: identical to the latest version'} at "
            f"`{version['path']}`.\n\n| | |\n|---|---|\n"
            f"| prompts | {s['prompts']} |\n| samples | {s['samples']} |\n| accuracy | {s['accuracy']} |\n"
            f"| pass@n | {s['pass_at_n']} |\n| pairs ({cfg.pairs.strategy}) | {p['pairs']} |\n"
            f"| chosen from | {p['chosen_source']} |\n| dropped | {p['dropped']} |\n"
            f"| mean margin | {sep.get('mean_margin')} |\n| same-model share | {sep.get('same_model_share')} |\n"
            f"| length diff chosen-rejected (chars, mean) | {(sep.get('length_diff_chars') or {}).get('mean')} |\n"
        ),
        description=f"{cfg.dataset} {version['version']} summary",
    )
