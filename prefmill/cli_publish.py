"""`prefmill publish` and `prefmill card`: a version leaves the machine (Hub or folder) with its card."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from prefmill.cli_common import StoreOpt, app, console
from prefmill.cli_common import errors as _errors
from prefmill.cli_common import store_root as _store

TestSizeOpt = Annotated[float, typer.Option(
    "--test-size", help="Share of the prompts in the test split, in [0, 1) (by a hash of prompt_id); 0: train only.")]
SplitsOpt = Annotated[str, typer.Option(
    "--splits", help="The two split names, train first: e.g. train,test or train_prefs,test_prefs.")]


@app.command("publish")
def publish_cmd(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    version: Annotated[Optional[str], typer.Argument(help="v0001 or 1; default: the latest.")] = None,
    repo: Annotated[str, typer.Option(help="Hub dataset id owner/name, or a local folder / file:// URL.")] = ...,
    private: Annotated[bool, typer.Option(help="Create the Hub repository private.")] = False,
    test_size: TestSizeOpt = 0.1,
    splits: SplitsOpt = "train,test",
    store: StoreOpt = None,
) -> None:
    """Publish a version: one Hub commit (data per config and split, README.md card, plots) tagged vNNNN,
    or the same files in a folder."""
    from prefmill.hub import publish
    from prefmill.splits import Splits

    with _errors():
        cut = Splits.from_options(test_size, splits)
        console.print(publish(_store(store), dataset, version, repo=repo, private=private, splits=cut).message,
                      highlight=False)


@app.command("card")
def card_cmd(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    version: Annotated[Optional[str], typer.Argument(help="v0001 or 1; default: the latest.")] = None,
    test_size: TestSizeOpt = 0.1,
    splits: SplitsOpt = "train,test",
    store: StoreOpt = None,
) -> None:
    """Print a version's dataset card (README.md with YAML front matter), as `publish` with the same
    split options writes it."""
    from prefmill.card import render_card
    from prefmill.splits import Splits

    with _errors():
        cut = Splits.from_options(test_size, splits)
        typer.echo(render_card(_store(store), dataset, version, splits=cut), nl=False)
