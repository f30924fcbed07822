"""`prefmill verify`: math-verify a file of completions against references, row by row."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from prefmill.atomic import write_atomically
from prefmill.config import VerifyConfig
from prefmill.errors import InputError, OutputError, os_reason
from prefmill.sources import ANSWER, LINE, check_column, read_table
from prefmill.answers import verify_rows

OUTPUT_SUFFIXES = {".parquet", ".jsonl"}


def _check_text_field(frame: pl.DataFrame, field: str, where: Path) -> None:
    """Text or finite numbers (a bare 18 is an answer too); the first bad row is named."""
    if field not in frame.columns:
        fields = ", ".join(c for c in frame.columns if c != LINE) or "none"
        raise InputError(f"{where}: field {field!r} not found; fields are {fields}")
    check_column(frame, field, ANSWER, str(where))


def _check_output(out: Path) -> None:
    if out.is_dir():
        raise OutputError(f"{out}: is a folder; --out needs a file name ending in .parquet or .jsonl")
    if out.suffix not in OUTPUT_SUFFIXES:
        raise OutputError(f"{out}: unsupported output type {out.suffix!r}", hint="use .parquet or .jsonl")
    parent = next((p for p in out.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise OutputError(f"{out}: cannot write the output: {parent} is a file, not a folder")


def verify_file(path: Path, *, completion_field: str, reference_field: str, out: Path) -> dict:
    """Every row of `path` with `extracted`, `reference_answer`, `correct`, written to `out` whole or not
    at all (an existing `out` is kept when the write fails). Returns rows, correct, and `unjudged`: how
    many rows got no verdict, by `verify_error` (no answer found, unparsable answer, no reference, ...)."""
    _check_output(out)
    frame = read_table(path, line_numbers=True, fields={completion_field: ANSWER, reference_field: ANSWER})
    if frame.height == 0:
        raise InputError(f"{path}: no rows")
    for field in (completion_field, reference_field):
        _check_text_field(frame, field, path)
    frame = frame.drop(LINE)
    # Bare numeric references (e.g. 18) are answers too.
    frame = frame.with_columns(pl.col(reference_field).cast(pl.String), pl.col(completion_field).cast(pl.String))
    checked = verify_rows(frame, completion_field=completion_field, reference_field=reference_field, cfg=VerifyConfig())
    try:
        write_atomically(out, checked.write_parquet if out.suffix == ".parquet" else checked.write_ndjson)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write the output: {os_reason(exc)}") from None
    reasons = checked["verify_error"].drop_nulls().value_counts(sort=True)
    unjudged = {str(reason): int(n) for reason, n in reasons.iter_rows()}
    return {"rows": checked.height, "correct": int(checked["correct"].sum()), "unjudged": unjudged}
