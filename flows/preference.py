"""Preference recipe: sample n answers per prompt, verify each against the reference, pair a
verified-correct answer with an incorrect one (ReFT / Self-Consistency sampling, GSM8K verifiers,
SPIN's reference-as-chosen), and publish a versioned dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from prefmill import progress
from prefmill.config import RunConfig, validate_config
from prefmill.engines import engine_for
from prefmill.tasks.wrappers import (
    concat_task,
    generate_task,
    load_prompts_task,
    pairs_task,
    publish_task,
    result_storage,
    verify_task,
)


@flow(name="preference", description=__doc__)
def preference(config: dict[str, Any], store: str = "store") -> dict[str, Any]:
    cfg: RunConfig = validate_config(config, origin="flow parameter `config`")
    root = Path(store)
    work = str((root / ".cache" / cfg.dataset).resolve())
    storage = result_storage(root)
    generate, concat, verify, pairs = (
        _cached(t.with_options(result_storage=storage)) for t in (generate_task, concat_task, verify_task, pairs_task)
    )

    prompts = load_prompts_task(cfg.source, work=work)
    frame = prompts.read()
    engine = engine_for(cfg.engine, references=dict(zip(frame["question"], frame["reference"])))

    size = cfg.generate.chunk_size
    chunks = []
    for start in range(0, prompts.rows, size):
        chunks.append(generate(prompts, start=start, size=size, cfg=cfg.generate, engine=engine, work=work))
        progress.report("generate", min(start + size, prompts.rows), prompts.rows)
    samples = concat(chunks, work=work)
    verified = verify(samples, prompts, cfg=cfg.verify, work=work)
    outcomes = pairs(verified, prompts, cfg=cfg.pairs, work=work)
    version = publish_task(
        verified, outcomes, store=str(root), dataset=cfg.dataset,
        config=cfg.model_dump(mode="json"), engine=engine.fingerprint,
    )
    _publish_artifacts(cfg, prompts.rows, version)
    return version


def _cached(task):
    """Call `task`; if its cached result points at a Parquet file that was deleted, recompute it."""

    def call(*args, **kwargs):
        ref = task(*args, **kwargs)
        if Path(ref.path).is_file():
            return ref
        return task.with_options(refresh_cache=True)(*args, **kwargs)

    return call


def _publish_artifacts(cfg: RunConfig, n_prompts: int, version: dict[str, Any]) -> None:
    s, p = version["stats"]["samples"], version["stats"]["pairs"]
    key = "".join(c if c.isalnum() else "-" for c in cfg.dataset.lower())
    create_table_artifact(
        key=f"{key}-stage-counts",
        table=[
            {"stage": "load-prompts", "rows_out": n_prompts, "note": cfg.source.path},
            {"stage": "generate", "rows_out": s["samples"], "note": f"n={cfg.generate.n}, failures={s['engine_failures']}"},
            {"stage": "verify", "rows_out": s["correct"], "note": f"correct; pass@n={s['pass_at_n']}"},
            {"stage": "pairs", "rows_out": p["pairs"], "note": f"dropped={p['dropped']}"},
        ],
        description=f"{cfg.dataset} {version['version']}: rows out of each stage",
    )
    create_markdown_artifact(
        key=f"{key}-version",
        markdown=(
            f"# {cfg.dataset} {version['version']}\n\n"
            f"{'New version' if version['created'] else 'Unchanged: identical to the latest version'} at "
            f"`{version['path']}`.\n\n| | |\n|---|---|\n"
            f"| prompts | {s['prompts']} |\n| samples | {s['samples']} |\n| accuracy | {s['accuracy']} |\n"
            f"| pass@n | {s['pass_at_n']} |\n| pairs | {p['pairs']} |\n| chosen from | {p['chosen_source']} |\n"
        ),
        description=f"{cfg.dataset} {version['version']} summary",
    )
