"""The tasks at the edges of a run: read the sources into the store's cache, publish a version."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import task
from prefect.logging import get_run_logger

from prefmill.config import DecontaminationConfig, RunConfig, SourceConfig
from prefmill.refs import TableRef, write_table
from prefmill.schemas.tables import EVAL_QUESTIONS, PROMPTS
from prefmill.sources import load_eval_questions, load_prompts
from prefmill.store import publish_version
from prefmill.store_location import open_store


def _by_content(frame, work: str, name: str, schema) -> TableRef:
    """Write `frame` as `<work>/<name>/<content hash>.parquet`: a changed source gives a new file."""
    staged = write_table(frame, Path(work) / name / "latest.parquet", schema=schema, where=name)
    final = Path(staged.path).with_name(f"{staged.sha256[:24]}.parquet")
    Path(staged.path).replace(final)
    return TableRef(str(final), staged.rows, staged.sha256, staged.size)


@task(name="load-prompts")
def load_prompts_task(source: SourceConfig, *, work: str) -> TableRef:
    """Not cached: the source is re-read every run, so an edited prompt file is noticed."""
    prompts = load_prompts(source)
    get_run_logger().info("load-prompts: %d prompts from %s", prompts.height, source.path)
    return _by_content(prompts, work, "prompts", PROMPTS)


@task(name="load-eval-questions")
def load_eval_questions_task(cfg: DecontaminationConfig, *, work: str) -> TableRef:
    """Not cached either: the questions of the evaluation sets a run decontaminates against."""
    questions = load_eval_questions(cfg.eval_files, field=cfg.field)
    get_run_logger().info("load-eval-questions: %d questions from %d file(s)", questions.height, len(cfg.eval_files))
    return _by_content(questions, work, "eval-questions", EVAL_QUESTIONS)


@task(name="publish")
def publish_task(
    assemble: Callable[..., tuple[dict, dict]], tables: dict[str, TableRef | None], *, options: dict[str, Any],
    store: str, dataset: str, config: RunConfig, engine: str,
) -> dict[str, Any]:
    """`assemble(**tables, **options)` gives the version's tables and stats; identical content reuses the latest."""
    version_tables, stats = assemble(**{k: ref.read() if ref else None for k, ref in tables.items()}, **options)
    version = publish_version(  # the runner says how, not what: outside the content hash, recorded beside it
        open_store(store), dataset, version_tables, config=config.model_dump(mode="json", exclude={"runner"}),
        info={"engine": engine, "runner": config.runner.model_dump(mode="json"), "stats": stats},
    )
    get_run_logger().info(
        "publish: %s %s (%s)", dataset, version.name, "new" if version.created else "unchanged, already published"
    )
    return {"dataset": dataset, "version": version.name, "path": str(version.path), "created": version.created, "stats": stats}
