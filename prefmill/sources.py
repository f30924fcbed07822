"""Prompt sources: a JSONL or Parquet file, a folder, or a Hub dataset id, all into one prompts table."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl

from prefmill.config import SourceConfig
from prefmill.errors import InputError
from prefmill.schemas.tables import PROMPTS
from prefmill.schemas.validate import conform
from prefmill.answers import reference_final_answer

TABLE_SUFFIXES = {".jsonl", ".json", ".parquet"}


def prompt_id(question: str) -> str:
    """Stable across files, row order and runs: a hash of the whitespace-normalised question."""
    return hashlib.sha256(" ".join(question.split()).encode()).hexdigest()[:16]


LINE = "_line"


def read_table(path: str | Path, *, line_numbers: bool = False) -> pl.DataFrame:
    """Read a JSONL or Parquet file; a bad line is reported with its number.

    With `line_numbers`, a `_line` column holds each row's 1-based line (JSONL) or row (Parquet),
    so later errors name the row a user sees in an editor.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix == ".parquet":
        try:
            frame = pl.read_parquet(path)
        except Exception as exc:  # polars/arrow raise several types for a corrupt file
            raise InputError(f"{path}: not a readable Parquet file: {exc}") from None
        return frame.with_row_index(LINE, offset=1) if line_numbers else frame
    if path.suffix not in {".jsonl", ".json"}:
        raise InputError(f"{path}: unsupported file type {path.suffix!r}", hint="use .jsonl or .parquet")
    rows, lines = [], []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}: row {line_no}: not valid JSON: {exc.msg}") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}: row {line_no}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
            lines.append(line_no)
    if not rows:
        return pl.DataFrame()
    try:
        frame = pl.DataFrame(rows, infer_schema_length=None)
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: rows have inconsistent field types: {exc}") from None
    return frame.with_columns(pl.Series(LINE, lines, dtype=pl.UInt32)) if line_numbers else frame


def _read_dataset(cfg: SourceConfig) -> pl.DataFrame:
    """A folder of files or a Hub dataset id, through `datasets` (the Hub's own loader)."""
    import datasets

    try:
        ds = datasets.load_dataset(cfg.path, cfg.subset, split=cfg.split)
    except (FileNotFoundError, ValueError, datasets.exceptions.DatasetNotFoundError) as exc:
        raise InputError(
            f"{cfg.path}: cannot load split {cfg.split!r} as a local folder or Hub dataset: {exc}",
            hint="check source.path / source.subset / source.split; set HF_HUB_OFFLINE=1 when offline",
        ) from None
    return pl.from_arrow(ds.data.table)


def load_prompts(cfg: SourceConfig) -> pl.DataFrame:
    """Read the source, check every row's question and reference, and give each prompt a stable id.

    Duplicate questions keep their first row.
    """
    path = Path(cfg.path)
    frame = read_table(path, line_numbers=True) if path.is_file() else _read_dataset(cfg)
    if LINE not in frame.columns:
        frame = frame.with_row_index(LINE, offset=1)
    where = str(path)
    for name in filter(None, (cfg.question_field, cfg.answer_field)):
        if name not in frame.columns:
            raise InputError(
                f"{where}: field {name!r} not found; fields are {', '.join(c for c in frame.columns if c != LINE) or 'none'}",
                hint="set source.question_field / source.answer_field",
            )
    frame = frame.with_row_index("source_row").slice(cfg.offset, cfg.limit)
    questions = frame.get_column(cfg.question_field)
    if questions.dtype != pl.String:
        raise InputError(f"{where}: field {cfg.question_field!r} must be text, got {questions.dtype}")
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
        }
    ).unique("prompt_id", keep="first", maintain_order=True)
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
