"""Prompt sources: a JSONL or Parquet file, a folder, or a Hub dataset id, all into one prompts table."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from prefmill.config import SourceConfig
from prefmill.errors import InputError, cut, os_reason
from prefmill.schemas.tables import PROMPTS
from prefmill.schemas.validate import conform
from prefmill.answers import reference_final_answer

TABLE_SUFFIXES = {".jsonl", ".json", ".parquet"}


def prompt_id(question: str) -> str:
    """Stable across files, row order and runs: a hash of the whitespace-normalised question."""
    return hashlib.sha256(" ".join(question.split()).encode()).hexdigest()[:16]


LINE = "_line"

TEXT = "text"
"""A field that must hold text (a question)."""
ANSWER = "answer"
"""A field that may hold text or a finite number (a reference, a completion)."""
_EXPECTED = {TEXT: "text", ANSWER: "text or a number"}


def _kind_problem(value: object, kind: str) -> str | None:
    """What is wrong with `value` for a field of `kind` ("got ..."), or None; None values are missing, not wrong."""
    if value is None or isinstance(value, str):
        return None
    if isinstance(value, bool):
        return f"expected {_EXPECTED[kind]}, got {'true' if value else 'false'}"
    if isinstance(value, (int, float)):
        if kind == TEXT:
            return f"expected text, got number {cut(value)}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"expected text or a finite number, got {_non_finite(value)}"
        return None
    what = "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__
    return f"expected {_EXPECTED[kind]}, got {what} {cut(json.dumps(value, default=str), 80)}"


def _non_finite(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _check_rows(path: Path, rows: list[dict], lines: list[int], fields: Mapping[str, str]) -> None:
    for row, line_no in zip(rows, lines):
        for field, kind in fields.items():
            if (problem := _kind_problem(row.get(field), kind)) is not None:
                raise InputError(f"{path}: row {line_no}, field {field!r}: {problem}")


def _first_inconsistent(path: Path, rows: list[dict], lines: list[int]) -> str | None:
    """The first row whose field holds another kind of JSON value than the field's first value."""
    def kind(value: object) -> str:
        if isinstance(value, bool):
            return "true/false"
        if isinstance(value, (int, float)):
            return "a number"
        return {str: "text", list: "a list", dict: "an object"}.get(type(value), type(value).__name__)

    first: dict[str, tuple[str, int]] = {}
    for row, line_no in zip(rows, lines):
        for field, value in row.items():
            if value is None:
                continue
            seen = first.setdefault(field, (kind(value), line_no))
            if {seen[0], kind(value)} - {"text", "a number"} and seen[0] != kind(value):
                return (f"{path}: row {line_no}, field {cut(repr(field))}: expected {seen[0]} (as in row {seen[1]}), "
                        f"got {kind(value)} {cut(json.dumps(value, default=str), 80)}")
    return None


def read_table(
    path: str | Path, *, line_numbers: bool = False, fields: Mapping[str, str] | None = None,
    window: tuple[int, int | None] = (0, None),
) -> pl.DataFrame:
    """Read a JSONL or Parquet file; a bad line is reported with its number.

    With `line_numbers`, a `_line` column holds each row's 1-based line (JSONL) or row (Parquet),
    so later errors name the row a user sees in an editor. `fields` (name -> `TEXT` or `ANSWER`) are
    checked row by row in a JSONL file (polars would turn 42 into "42" in a column of text), for the
    rows in `window` (offset, limit) only.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a JSONL or Parquet file")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix == ".parquet":
        try:
            frame = pl.read_parquet(path)
        except Exception as exc:  # polars/arrow raise several types for a corrupt file
            raise InputError(f"{path}: not a readable Parquet file: {cut(exc)}") from None
        return frame.with_row_index(LINE, offset=1) if line_numbers else frame
    if path.suffix not in {".jsonl", ".json"}:
        raise InputError(f"{path}: unsupported file type {cut(repr(path.suffix))}", hint="use .jsonl or .parquet")
    rows, lines = [], []
    try:
        with path.open("rb") as fh:
            for line_no, raw in enumerate(fh, start=1):
                if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a byte order mark, as some editors write
                    raw = raw[3:]
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputError(
                        f"{path}: row {line_no}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                        hint="save the file as UTF-8",
                    ) from None
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}: row {line_no}: not valid JSON: {exc.msg}") from None
                except RecursionError:
                    raise InputError(f"{path}: row {line_no}: not valid JSON: nested too deeply") from None
                if not isinstance(row, dict):
                    raise InputError(f"{path}: row {line_no}: expected a JSON object, got {type(row).__name__}")
                rows.append(row)
                lines.append(line_no)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file: {os_reason(exc)}") from None
    if not rows:
        return pl.DataFrame()
    if fields:
        offset, limit = window
        stop = None if limit is None else offset + limit
        _check_rows(path, rows[offset:stop], lines[offset:stop], fields)
    try:
        frame = pl.DataFrame(rows, infer_schema_length=None)
    except Exception as exc:  # polars raises ComputeError, TypeError, OverflowError... for mixed rows
        raise InputError(_first_inconsistent(path, rows, lines) or f"{path}: rows have inconsistent field types: {cut(exc)}") from None
    return frame.with_columns(pl.Series(LINE, lines, dtype=pl.UInt32)) if line_numbers else frame


def _looks_like_a_path(value: str) -> bool:
    """A Hub dataset id is `name` or `owner/name`; anything else that does not exist is a missing path."""
    return (
        Path(value).suffix in TABLE_SUFFIXES
        or value.startswith(("/", ".", "~"))
        or re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?", value) is None
    )


def _read_dataset(cfg: SourceConfig) -> pl.DataFrame:
    """A folder of files or a Hub dataset id, through `datasets` (the Hub's own loader)."""
    path = Path(cfg.path).expanduser()
    if not path.exists() and _looks_like_a_path(cfg.path):
        kind = "file" if path.suffix in TABLE_SUFFIXES else "file or folder"
        raise InputError(f"{cfg.path}: no such {kind}", hint="check source.path (relative paths are taken from the recipe's folder)")
    import datasets

    try:
        ds = datasets.load_dataset(cfg.path, cfg.subset, split=cfg.split)
        table = ds.data.table
        table.validate(full=True)  # Arrow's JSON reader keeps bytes that are not UTF-8; polars would panic on them
        return pl.from_arrow(table)
    except Exception as exc:  # datasets raises a dozen types: not found, offline, a bad file in the folder
        offline = any(os.environ.get(v, "").lower() in {"1", "true", "yes", "on"}
                      for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
        hint = "check source.path / source.subset / source.split"
        if offline and not path.exists():
            hint += "; HF_HUB_OFFLINE is set, so a Hub dataset loads only from the local cache"
        raise InputError(
            f"{cfg.path}: cannot load split {cfg.split!r} as a local folder or Hub dataset: "
            f"{type(exc).__name__}: {cut(exc)}",
            hint=hint,
        ) from None


def _describe_cell(value: object) -> str:
    if isinstance(value, pl.Series):
        value = value.to_list()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"number {cut(value)}"
    if isinstance(value, (list, dict)):
        what = "a list" if isinstance(value, list) else "an object"
        return f"{what} {cut(json.dumps(value, default=str), 80)}"
    return cut(repr(value), 80)


def check_column(frame: pl.DataFrame, name: str, kind: str, where: str) -> None:
    """A column read from Parquet or a dataset: one type for every row, so name its first bad row."""
    column = frame.get_column(name)
    if column.dtype in (pl.String, pl.Null):
        return
    if kind == ANSWER and column.dtype.is_numeric():
        if column.dtype.is_float():
            bad = frame.filter(column.is_nan() | column.is_infinite())
            if bad.height:
                raise InputError(f"{where}: row {bad[LINE][0]}, field {name!r}: expected text or a finite number, "
                                 f"got {_non_finite(bad[name][0])}")
        return
    first = frame.filter(column.is_not_null())
    got = f"{_describe_cell(first[name][0])} (the column is {column.dtype})" if first.height else str(column.dtype)
    row = f"row {first[LINE][0]}, " if first.height else ""
    raise InputError(f"{where}: {row}field {name!r}: expected {_EXPECTED[kind]}, got {got}")


def _reference_key(reference: str | None, answer: str | None) -> str | None:
    return answer if answer is not None else reference


def _check_conflicts(prompts: pl.DataFrame, where: str, field: str) -> None:
    """Rows with the same question (whitespace ignored) must not disagree on the reference."""
    repeated = prompts.filter(pl.col("prompt_id").is_duplicated())
    if not repeated.height:
        return
    first: dict[str, tuple[int, str | None, str | None]] = {}
    for pid, ref, answer, line in repeated.select("prompt_id", "reference", "reference_answer", LINE).iter_rows():
        if pid not in first:
            first[pid] = (line, ref, answer)
            continue
        line0, ref0, answer0 = first[pid]
        if _reference_key(ref0, answer0) != _reference_key(ref, answer):
            a, b = (cut(repr(_reference_key(r, x)), 80) for r, x in ((ref0, answer0), (ref, answer)))
            raise InputError(
                f"{where}: rows {line0} and {line} have the same question (field {field!r}) but different "
                f"references: {a} vs {b}",
                hint="remove or fix one of them; duplicates that agree are kept once",
            )


def load_prompts(cfg: SourceConfig) -> pl.DataFrame:
    """Read the source, check every row's question and reference, and give each prompt a stable id.

    Duplicate questions (whitespace ignored) keep their first row when their references agree (the
    same final answer, or the same text where there is none) and are refused, naming both rows,
    when they do not: which one is right is not ours to guess.
    """
    path = Path(cfg.path)
    where = str(path)
    fields = {cfg.question_field: TEXT, **({cfg.answer_field: ANSWER} if cfg.answer_field else {})}
    if path.is_file():
        frame = read_table(path, line_numbers=True, fields=fields, window=(cfg.offset, cfg.limit))
    else:
        frame = _read_dataset(cfg)
    if LINE not in frame.columns:
        frame = frame.with_row_index(LINE, offset=1)
    if frame.height == 0:
        raise InputError(f"{where}: no rows")
    for name in filter(None, (cfg.question_field, cfg.answer_field)):
        if name not in frame.columns:
            raise InputError(
                f"{where}: field {name!r} not found; fields are {', '.join(c for c in frame.columns if c != LINE) or 'none'}",
                hint="set source.question_field / source.answer_field",
            )
    if cfg.offset >= frame.height:
        unit = "file" if path.is_file() else f"split {cfg.split!r}"
        raise InputError(f"{where}: source.offset is {cfg.offset} but the {unit} has {frame.height} rows",
                         hint="lower source.offset")
    frame = frame.with_row_index("source_row").slice(cfg.offset, cfg.limit)
    for name, kind in fields.items():
        check_column(frame, name, kind, where)
    questions = frame.get_column(cfg.question_field).cast(pl.String)
    bad = frame.filter(questions.is_null() | (questions.str.strip_chars() == ""))
    if bad.height:
        raise InputError(f"{where}: row {bad[LINE][0]}, field {cfg.question_field!r}: empty or missing")
    if cfg.answer_field:
        references = frame.get_column(cfg.answer_field).cast(pl.String, strict=False)
    else:
        references = pl.Series([None] * frame.height, dtype=pl.String)
    prompts = pl.DataFrame(
        {
            "prompt_id": [prompt_id(q) for q in questions],
            "question": questions,
            "reference": references,
            "reference_answer": [reference_final_answer(r) if r is not None else None for r in references],
            "source_row": frame["source_row"].cast(pl.Int64),
            LINE: frame[LINE].cast(pl.Int64),
        }
    )
    _check_conflicts(prompts, where, cfg.question_field)
    prompts = prompts.unique("prompt_id", keep="first", maintain_order=True).drop(LINE)
    return pl.from_arrow(conform(prompts, PROMPTS, where=where))


def check_eval_files(paths: tuple[str, ...], *, field: str) -> None:
    """Decontamination sets must exist and hold the question field before a run starts."""
    for path in paths:
        frame = read_table(path)
        if field not in frame.columns:
            raise InputError(f"{path}: decontamination field {field!r} not found", hint="set decontamination.field")


def load_eval_questions(paths: tuple[str, ...], *, field: str) -> pl.DataFrame:
    """The `field` of every row of the evaluation files (`source`: the file), for decontamination."""
    check_eval_files(paths, field=field)
    parts = [
        read_table(path).select(pl.lit(str(path)).alias("source"), pl.col(field).cast(pl.String).alias("question"))
        for path in paths
    ]
    return pl.concat(parts) if parts else pl.DataFrame(schema={"source": pl.String, "question": pl.String})
