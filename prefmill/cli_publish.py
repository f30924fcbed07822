"""`prefmill publish` and `prefmill card`: a version leaves the machine (Hub or folder) with its card."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from prefmill.cli_common import StoreOpt, app, console
from prefmill.cli_common import errors as _errors
from prefmill.cli_common import store_root as _store

@app.command("publish")
def publish_cmd(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    version: Annotated[Optional[str], typer.Argument(help="v0001 or 1; default: the latest.")] = None,
    repo: Annotated[str, typer.Option(help="Hub dataset id owner/name, or a local folder / file:// URL.")] = ...,
    private: Annotated[bool, typer.Option(help="Create the Hub repository private.")] = False,
    store: StoreOpt = None,
) -> None:
    """Publish a version: one Hub commit (data, README.md card) tagged vNNNN, or the same files in a folder."""
    from prefmill.hub import publish

    with _errors():
        console.print(publish(_store(store), dataset, version, repo=repo, private=private).message, highlight=False)


@app.command("card")
def card_cmd(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    version: Annotated[Optional[str], typer.Argument(help="v0001 or 1; default: the latest.")] = None,
    store: StoreOpt = None,
) -> None:
    """Print a version's dataset card (README.md with YAML front matter), as `publish` writes it."""
    from prefmill.card import render_card

    with _errors():
        typer.echo(render_card(_store(store), dataset, version), nl=False)
