"""`export_version`: one format of one version, written whole or not at all to a new file.

A `.parquet` path gets Parquet (zstd, the export's explicit schema), a `.jsonl` path one JSON object a
line. The output must not exist yet; it is written to a temporary name beside it and renamed
(prefmill.atomic), so a failed or interrupted export leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from prefmill.atomic import write_atomically
from prefmill.errors import InputError, OutputError, os_reason
from prefmill.exports.dpo import to_dpo
from prefmill.exports.openrlhf import PLACEHOLDER, check_tokenizer, to_openrlhf_prm
from prefmill.exports.prm import to_prm
from prefmill.exports.source import read_config
from prefmill.exports.step_labels import LABEL_KINDS, LabelKind
from prefmill.splits import Splits, held_out_mask

Format = Literal["dpo", "prm", "openrlhf-prm"]
CONFIG = {"dpo": "pairs", "prm": "steps", "openrlhf-prm": "steps"}  # the config each format is made from
SOFT_LABELS = ("openrlhf-prm",)  # formats whose trainer takes soft labels
SUFFIXES = (".parquet", ".jsonl")


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    version: str
    rows: int
    skipped: dict[str, int] = field(default_factory=dict)  # rows left out, by reason (step_labels.py)


def check_output(out: Path) -> None:
    """A new `.parquet` / `.jsonl` file in a folder that is (or can be made) a folder."""
    if out.suffix not in SUFFIXES:
        raise OutputError(f"{out}: unsupported output type {out.suffix!r}", hint="end --out with .parquet or .jsonl")
    if out.exists() or out.is_symlink():
        raise OutputError(f"{out}: already exists; an export never overwrites a file",
                          hint="remove it or choose another --out")
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise OutputError(f"{out}: cannot write the export: {parent} is a file, not a folder")


def _check_labels(fmt: str, labels: str) -> None:
    if labels not in LABEL_KINDS:
        raise InputError(f"--labels {labels!r}: expected one of {', '.join(LABEL_KINDS)}")
    if labels == "soft" and fmt not in SOFT_LABELS:
        hint = ("a token-classification head trains on class ids; for Monte-Carlo soft values use "
                "--format openrlhf-prm --labels soft") if fmt == "prm" else "--labels applies to step formats only"
        raise InputError(f"--format {fmt} has no soft labels", hint=hint)


def build(table: pa.Table, fmt: str, *, labels: LabelKind, placeholder: str, skipped: dict[str, int]) -> pa.Table:
    """The export table of `fmt` from its config's table."""
    if fmt == "dpo":
        return to_dpo(table)
    if fmt == "prm":
        return to_prm(table, skipped=skipped)
    return to_openrlhf_prm(table, labels=labels, skipped=skipped, placeholder=placeholder)


def _write(table: pa.Table, out: Path) -> None:
    if out.suffix == ".parquet":
        write_atomically(out, lambda tmp: pq.write_table(table, tmp, compression="zstd"))
    else:
        frame = pl.from_arrow(table)
        write_atomically(out, frame.write_ndjson)


def export_version(root: Path, dataset: str, version: str | None, *, fmt: Format, out: Path,
                   labels: LabelKind = "hard", placeholder: str = PLACEHOLDER, tokenizer: Any = None,
                   split: str = "all", test_size: float = 0.1) -> ExportResult:
    """Write `fmt` of a version (default: the latest) to `out`. With `tokenizer` (a transformers
    tokenizer), an `openrlhf-prm` export is checked to tokenize as OpenRLHF expects before it is written.
    `split` train / test: only the prompts `prefmill publish --test-size` puts on that side (the same
    hash rule, prefmill.splits), so a model trained on the export never saw the published test prompts."""
    if fmt not in CONFIG:
        raise InputError(f"--format {fmt!r}: expected one of {', '.join(CONFIG)}")
    _check_labels(fmt, labels)
    out = Path(out)
    check_output(out)
    if split not in ("all", "train", "test"):
        raise InputError(f"--split {split!r}: expected all, train or test")
    manifest, source = read_config(root, dataset, version, CONFIG[fmt], needed_by=f"--format {fmt}")
    if split != "all":
        test = held_out_mask(source, Splits(test_size).test_size, where=f"{dataset} {CONFIG[fmt]}")
        source = source.filter(test if split == "test" else pc.invert(test))
    name = str(manifest.get("version", version))
    skipped: dict[str, int] = {}
    table = build(source, fmt, labels=labels, placeholder=placeholder, skipped=skipped)
    if table.num_rows == 0:
        why = f" ({', '.join(f'{n} {r}' for r, n in sorted(skipped.items()))} skipped)" if skipped else ""
        raise InputError(f"{dataset} {name}: no rows to export as {fmt}{why}",
                         hint="--labels hard exports every published step row" if skipped else None)
    if tokenizer is not None and fmt == "openrlhf-prm":
        check_tokenizer(table, tokenizer, placeholder=placeholder)
    try:
        _write(table, out)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write the export: {os_reason(exc)}") from None
    return ExportResult(out, fmt, name, table.num_rows, dict(sorted(skipped.items())))
