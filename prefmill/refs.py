"""Stages hand each other small references to Parquet files, never DataFrames (Prefect hashes and
pickles task arguments and results)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from prefmill.schemas.validate import conform
from prefmill.store import file_sha256


@dataclass(frozen=True)
class TableRef:
    path: str
    rows: int
    sha256: str  # content hash of the file: the input part of every downstream cache key

    def read(self) -> pl.DataFrame:
        return pl.read_parquet(self.path)


def write_table(frame: pl.DataFrame | pa.Table, path: Path, *, schema: pa.Schema | None = None, where: str) -> TableRef:
    """Write atomically (temp file + rename), conformed to `schema` when given."""
    table = conform(frame, schema, where=where) if schema is not None else (
        frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return TableRef(str(path), table.num_rows, file_sha256(path))
