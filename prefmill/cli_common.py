"""What every `prefmill` command shares: the Typer app, the consoles, the --store option, one-line errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from prefmill.errors import PrefmillError, StoreError
from prefmill.store_location import Location, open_store

app = typer.Typer(
    help="Mill prompts into versioned preference datasets (Prefect flows driving vLLM).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

StoreOpt = Annotated[
    Optional[str],
    typer.Option("--store", help="Store folder, or a URL such as s3://bucket/prefix (run, versions, show, diff, "
                 "query). Default: $PREFMILL_STORE or ./store.", show_default=False),
]


def store_location(store: str | None) -> Path | Location:
    """The store a command reads or writes: a folder, or a URL on object storage; a bad URL: exit 2."""
    with errors():
        return open_store(store)


def store_root(store: str | None) -> Path:
    """A local store folder, for the commands that read a version's files as local files (publish, card,
    export); a URL store is one clear error."""
    root = open_store(store)
    if isinstance(root, Location):
        raise StoreError(f"{root}: this command reads a local store only",
                         hint="copy the version to a folder first (e.g. `aws s3 sync`), then give that folder as --store")
    return root


@contextmanager
def errors() -> Iterator[None]:
    """A `PrefmillError` inside the block: one clear line, exit 2."""
    try:
        yield
    except PrefmillError as exc:
        fail(exc)


def fail(exc: PrefmillError) -> None:
    from rich.markup import escape

    err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
    if exc.hint:
        err.print(f"[yellow]hint:[/] {escape(exc.hint)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)
