"""`prefmill export`: a version as the file a trainer reads (TRL DPO, a token-classification PRM, OpenRLHF)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from prefmill.cli_common import StoreOpt, app, console, err
from prefmill.cli_common import errors as _errors
from prefmill.cli_common import store_root as _store
from prefmill.errors import InputError, os_reason


class ExportFormat(str, Enum):
    dpo = "dpo"
    prm = "prm"
    openrlhf_prm = "openrlhf-prm"


class Split(str, Enum):
    all = "all"
    train = "train"
    test = "test"


class Labels(str, Enum):
    hard = "hard"
    soft = "soft"


_SOFT_NOTE = ("note: openrlhf 0.5.6 - 0.9.5 fail on float labels (ProcessRewardDataset gives the label tensor the "
              "input ids' integer dtype); see `prefmill.exports.openrlhf` for the versions that take them and the fix")


def _tokenizer(path: Path):
    hint = "give the model folder train_prm gets as --pretrain"
    if not path.is_dir():
        raise InputError(f"--tokenizer {path}: not a folder", hint=hint)
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        reason = os_reason(exc) if isinstance(exc, OSError) else str(exc)
        raise InputError(f"--tokenizer {path}: cannot load a tokenizer: {reason}", hint=hint) from None


@app.command("export")
def export_cmd(
    dataset: Annotated[str, typer.Argument(help="Dataset name.")],
    version: Annotated[Optional[str], typer.Argument(help="v0001 or 1; default: the latest.")] = None,
    format_: Annotated[ExportFormat, typer.Option("--format", help="dpo (TRL DPOTrainer, from `pairs`); prm "
                       "(token-classification PRM, from `steps`); openrlhf-prm (OpenRLHF train_prm, from `steps`).")] = ...,
    out: Annotated[Path, typer.Option(help="A new file ending .parquet or .jsonl; never overwritten.")] = ...,
    labels: Annotated[Labels, typer.Option(help="Step labels: hard (True/False) or soft (Monte-Carlo values; "
                      "openrlhf-prm only).")] = Labels.hard,
    placeholder: Annotated[Optional[str], typer.Option(help="openrlhf-prm: the token after every step (train_prm's "
                           "--placeholder_token); one token of the model's tokenizer.  [default: ки]",
                           show_default=False)] = None,
    tokenizer: Annotated[Optional[Path], typer.Option(help="openrlhf-prm: a tokenizer folder; check that every row "
                         "has one placeholder token per label before writing.")] = None,
    split: Annotated[Split, typer.Option(help="all prompts, or only the train / test side of `prefmill publish "
                     "--test-size` (same prompt-hash rule), so training never sees the published test prompts.")] = Split.all,
    test_size: Annotated[float, typer.Option(help="With --split train|test: the publish's --test-size.")] = 0.1,
    store: StoreOpt = None,
) -> None:
    """Export a version for a trainer: one Parquet (or JSONL) file, written whole or not at all."""
    from prefmill.exports.openrlhf import PLACEHOLDER
    from prefmill.exports.write import export_version

    with _errors():
        if format_ is not ExportFormat.openrlhf_prm and (placeholder is not None or tokenizer is not None):
            raise InputError(f"--placeholder and --tokenizer apply to --format openrlhf-prm only, not {format_.value}")
        tok = _tokenizer(tokenizer) if tokenizer is not None else None
        result = export_version(_store(store), dataset, version, fmt=format_.value, out=out, labels=labels.value,
                                placeholder=PLACEHOLDER if placeholder is None else placeholder, tokenizer=tok,
                                split=split.value, test_size=test_size)
    skipped = "".join(f"; skipped {n} rows: {reason}" for reason, n in result.skipped.items())
    kind = result.format if format_ is ExportFormat.dpo else f"{result.format}, {labels.value} labels"
    console.print(f"{dataset} {result.version}: wrote {result.rows} rows ({kind}) to {result.path}{skipped}",
                  highlight=False, soft_wrap=True)
    if split is Split.all:
        err.print("note: all prompts, including those `prefmill publish` holds out as its test split; "
                  "--split train leaves them out", highlight=False, soft_wrap=True)
    if format_ is ExportFormat.openrlhf_prm and labels is Labels.soft:
        err.print(_SOFT_NOTE, highlight=False, soft_wrap=True)
