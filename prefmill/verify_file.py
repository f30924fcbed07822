"""`prefmill verify`: math-verify a file of completions against references, row by row."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from prefmill.atomic import write_atomically
from prefmill.config import VerifyConfig
from prefmill.errors import InputError
from prefmill.sources import read_table
from prefmill.answers import verify_rows

OUTPUT_SUFFIXES = {".parquet", ".jsonl"}


def _check_text_field(frame: pl.DataFrame, field: str, where: Path) -> None:
    if field not in frame.columns:
        raise InputError(f"{where}: field {field!r} not found; fields are {', '.join(frame.columns) or 'none'}")
    column = frame[field]
    if column.dtype not in (pl.String, pl.Null):
        numeric = column.dtype.is_numeric()
        if not numeric:
            raise InputError(f"{where}: field {field!r} must be text, got {column.dtype}")


def verify_file(path: Path, *, completion_field: str, reference_field: str, out: Path) -> dict[str, int]:
    if out.suffix not in OUTPUT_SUFFIXES:
        raise InputError(f"{out}: unsupported output type {out.suffix!r}", hint="use .parquet or .jsonl")
    frame = read_table(path)
    for field in (completion_field, reference_field):
        _check_text_field(frame, field, path)
    # Bare numeric references (e.g. 18) are answers too.
    frame = frame.with_columns(pl.col(reference_field).cast(pl.String), pl.col(completion_field).cast(pl.String))
    checked = verify_rows(frame, completion_field=completion_field, reference_field=reference_field, cfg=VerifyConfig())
    write_atomically(out, checked.write_parquet if out.suffix == ".parquet" else checked.write_ndjson)
    return {"rows": checked.height, "correct": int(checked["correct"].sum())}
