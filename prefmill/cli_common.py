"""What every `prefmill` command shares: the Typer app, the consoles, the --store option, one-line errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from prefmill.errors import PrefmillError
from prefmill.store import default_store

app = typer.Typer(
    help="Mill prompts into versioned preference datasets (Prefect flows driving vLLM).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

StoreOpt = Annotated[
    Optional[Path],
    typer.Option("--store", help="Store folder. Default: $PREFMILL_STORE or ./store.", show_default=False),
]


def store_root(store: Path | None) -> Path:
    return store if store is not None else default_store()


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
