"""`prefmill`: run recipes, inspect versions, query them with DuckDB, verify answers."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from prefmill.errors import PrefmillError, StoreError, os_reason
from prefmill.run_summary import summary_table
from prefmill.store_location import Location
from prefmill.cli_common import StoreOpt, app, console, err
from prefmill.cli_common import errors as _errors
from prefmill.cli_common import fail as _fail
from prefmill.cli_common import store_location as _store

@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Recipe YAML, e.g. configs/demo.yaml.")],
    store: StoreOpt = None,
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="Override a recipe key: --set generate.n=8 (repeatable)."),
    ] = None,
) -> None:
    """Run a recipe (its preference or process flow) and publish a new dataset version."""
    from prefmill.flows.server import start_api

    root = _store(store)
    server = start_api()  # now: its start-up overlaps the checks, the imports and the model load below
    try:
        _run(config, root, set_ or [], server)
    finally:
        if server is not None:
            server.stop()


def _run(config: Path, root: Path | Location, overrides: list[str], server) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from prefmill import progress
    from prefmill.config import load_config
    from prefmill.flows.console import no_console_tracebacks
    from prefmill.flows.server import prefect_api
    from prefmill.models import check_model
    from prefmill.sources import check_eval_files, load_prompts
    from prefmill.store import check_writable

    try:
        cfg = load_config(config, overrides)
        load_prompts(cfg.source)  # a bad input fails here, in one line, before Prefect starts
        if cfg.decontamination.enabled:
            check_eval_files(cfg.decontamination.eval_files, field=cfg.decontamination.field)
        for field, engine in _engines(cfg):
            if engine.kind == "vllm":
                check_model(engine.model, where=f"{config}: {field}.model")
        if cfg.runner.kind == "ray":
            from prefmill.engines.ray_pool import check_address

            check_address(cfg.runner)
        check_writable(root, cfg.dataset)  # last: it creates the store folder when it is missing
    except PrefmillError as exc:
        _fail(exc)
    if any(engine.kind == "vllm" for _, engine in _engines(cfg)):
        from prefmill.engines.vllm import preload

        preload()  # its import overlaps the flow's imports and the Prefect server's start
    if cfg.flow == "process":
        from prefmill.flows.process import process as run_flow
    else:
        from prefmill.flows.preference import preference as run_flow

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err)
    ids: dict[str, int] = {}

    def listener(stage: str, done: int, total: int) -> None:
        if stage not in ids:
            ids[stage] = bar.add_task(f"{stage} (prompts)", total=total)
        bar.update(ids[stage], completed=done)

    progress.add_listener(listener)
    try:
        with prefect_api(server), bar, no_console_tracebacks():
            result = run_flow(config=cfg.model_dump(mode="json"), store=str(root))
    except PrefmillError as exc:
        _fail(exc)
    except OSError as exc:  # a full disk or a permission lost during the run, in any stage
        _fail(StoreError(f"{exc.filename or root}: {os_reason(exc)}", hint="fix it and rerun: finished stages are cached"))
    finally:
        progress.remove_listener(listener)
    console.print(summary_table(result))
    console.print(result["path"], highlight=False, soft_wrap=True)


def _engines(cfg) -> list[tuple[str, object]]:
    """(field, engine) for every engine a recipe names: policy, judge, RISE editor, CREAM judge."""
    named = [("engine", cfg.engine), ("judge.engine", cfg.judge.engine), ("rise.engine", cfg.rise.engine),
             ("filters.cream_judge", getattr(cfg.filters, "cream_judge", None))]
    return [(field, engine) for field, engine in named if engine is not None]


def _check_dataset(dataset: str) -> None:
    from prefmill.store import check_dataset_name

    with _errors():
        check_dataset_name(dataset)


@app.command()
def versions(dataset: Annotated[str, typer.Argument(help="Dataset name.")], store: StoreOpt = None) -> None:
    """List a dataset's versions, oldest first; warns about version folders that cannot be listed."""
    from rich.markup import escape

    from prefmill.store import missing_manifests, read_manifest, version_names

    _check_dataset(dataset)
    root = _store(store)
    with _errors():  # a store on object storage may be out of reach
        missing, names = missing_manifests(root, dataset), version_names(root, dataset)
    for folder in missing:
        _warn(f"{folder}: no manifest.json, so this version is not listed or queried (an interrupted copy, or "
              "the manifest was deleted)")
    rows = []
    for name in names:
        try:
            m = read_manifest(root, dataset, name)
        except PrefmillError as exc:
            _warn(f"{exc.message}; version {name} is not listed")
            continue
        st = m.get("stats") if isinstance(m.get("stats"), dict) else {}
        rows.append((name, m.get("parent") or "-", m.get("created_at", "-"), _stat(st, "samples", "samples"),
                     _stat(st, "pairs", "pairs"), m.get("engine", "-")))
    if not rows:
        _fail(PrefmillError(f"{root / dataset}: no versions of dataset {dataset!r}", hint="run `prefmill run CONFIG` first"))
    table = Table(title=escape(f"{dataset} in {root}"))
    for col in ("version", "parent", "created_at", "samples", "pairs", "engine"):
        table.add_column(col)
    for row in rows:
        table.add_row(*(escape(str(v)) for v in row))
    console.print(table)


def _stat(stats: dict, section: str, key: str) -> str:
    return str(part.get(key, "-")) if isinstance(part := stats.get(section), dict) else "-"


def _warn(text: str) -> None:
    from rich.markup import escape

    err.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)


@app.command()
def show(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    version: Annotated[Optional[str], typer.Argument(help="v0001 or 1. Default: the latest.")] = None,
    store: StoreOpt = None,
) -> None:
    """Show a version's manifest: files, rows, stats, engine and recipe."""
    from prefmill.store import read_manifest

    _check_dataset(dataset)
    with _errors():
        manifest = read_manifest(_store(store), dataset, version)
    console.print_json(json.dumps(manifest))


@app.command()
def diff(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    old: Annotated[str, typer.Argument(help="The earlier version, v0001 or 1.")],
    new: Annotated[str, typer.Argument(help="The later version.")],
    store: StoreOpt = None,
) -> None:
    """Rows added, removed and changed per config (matched by id), and the stats that moved."""
    from prefmill.diff import diff_tables, diff_versions

    _check_dataset(dataset)
    root = _store(store)
    with _errors():
        try:
            configs, stats = diff_versions(root, dataset, old, new)
        except OSError as exc:  # a store on object storage out of reach
            raise StoreError(f"{exc.filename or root}: cannot read the version: {os_reason(exc)}") from None
    for table in diff_tables(dataset, old, new, configs, stats):
        console.print(table)


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL over the views `samples` and `pairs` (all versions).")],
    store: StoreOpt = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    dataset: Annotated[str, typer.Option(help="Restrict the views to one dataset.")] = "*",
) -> None:
    """Query every published version with DuckDB; views carry `dataset` and `version` columns."""
    from prefmill.query import run_query

    if dataset != "*":
        _check_dataset(dataset)
    skipped: list[str] = []
    with _errors():
        frame = run_query(_store(store), sql, dataset=dataset, skipped=skipped)
    for line in skipped:
        _warn(line)
    if format is Format.csv:
        sys.stdout.write(frame.write_csv())
    elif format is Format.json:
        sys.stdout.write(json.dumps(frame.to_dicts(), default=str) + "\n")
    else:
        table = Table(show_header=True)
        for name in frame.columns:
            table.add_column(name)
        for row in frame.iter_rows():
            table.add_row(*("" if v is None else str(v) for v in row))
        console.print(table)


@app.command("verify")
def verify_file(
    input: Annotated[Path, typer.Argument(help="JSONL or Parquet file of completions.")],
    completion_field: Annotated[str, typer.Option(help="Field holding the model's answer text.")],
    reference_field: Annotated[str, typer.Option(help="Field holding the reference: a worked solution or a bare answer.")],
    out: Annotated[Path, typer.Option(help="Output file; .parquet or .jsonl decides the format.")],
) -> None:
    """Check answers with math-verify: writes the rows plus `extracted`, `reference_answer`, `correct`."""
    from prefmill.verify_file import verify_file as run_verify

    with _errors():
        counts = run_verify(input, completion_field=completion_field, reference_field=reference_field, out=out)
    unjudged = counts["unjudged"]
    why = f"; {sum(unjudged.values())} without a verdict ({', '.join(f'{k}={v}' for k, v in unjudged.items())})" if unjudged else ""
    console.print(f"{counts['correct']} of {counts['rows']} correct{why} -> {out}", highlight=False)


@app.command()
def deploy(
    file: Annotated[Path, typer.Option(help="Prefect project file with the deployments.")] = Path("deployments/prefect.yaml"),
    project: Annotated[Path, typer.Option(help="Folder the flows run in (entrypoints and recipes are relative to it).")] = Path("."),
) -> None:
    """Create the deployments (schedules, work pool, one-at-a-time GPU limit) on the server in PREFECT_API_URL."""
    from prefmill.flows.deploy import apply

    with _errors():
        names = apply(file, project=project)
    for name in names:
        console.print(f"deployed {name}", highlight=False)
    console.print("start a worker: prefect worker start --pool <work pool>", highlight=False)


@app.command("prepare-model")
def prepare_model(force: Annotated[bool, typer.Option(help="Convert again even if cached.")] = False) -> None:
    """Convert the packaged default model (SmolLM2-135M-Instruct GGUF) to safetensors, once."""
    from prefmill.models import prepare_default_model

    with _errors():
        console.print(str(prepare_default_model(force=force)))


from prefmill import cli_publish  # noqa: E402,F401  (registers publish, card)
from prefmill import cli_export  # noqa: E402,F401  (registers export)

if __name__ == "__main__":
    app()
