"""Stages hand each other small references to Parquet files, never DataFrames (Prefect hashes and
pickles task arguments and results). A reference carries the file's size and content hash, and reading
it checks both, so a file changed or truncated after it was written is never taken for the original."""

from __future__ import annotations

import hashlib
import io
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from prefmill.atomic import write_atomically
from prefmill.errors import StoreError
from prefmill.schemas.validate import conform
from prefmill.store import file_sha256
from prefmill.store_location import is_url, location


class StaleRefError(StoreError):
    """A referenced file is gone or no longer holds what was written."""


@dataclass(frozen=True)
class TableRef:
    path: str
    rows: int
    sha256: str  # content hash of the file: the input part of every downstream cache key
    size: int = -1  # bytes; -1: not recorded (a file the run did not write)

    def _problem(self, data: bytes | None) -> str | None:
        if data is None:
            return "the file is missing"
        if self.size >= 0 and len(data) != self.size:
            return f"it has {len(data)} bytes, {self.size} were written"
        if hashlib.sha256(data).hexdigest() != self.sha256:
            return "its content hash differs from the one written"
        return None

    def intact(self) -> bool:
        """True when the file still holds exactly what was written."""
        return self.problem() is None

    def problem(self) -> str | None:
        """What is wrong with the file (missing, truncated, changed), or None."""
        return self._problem(_read(self.path))

    def read(self) -> pl.DataFrame:
        key, stat = (self.path, self.sha256, self.size), _stat(self.path)
        if (hit := _VERIFIED.get(key)) is not None and stat is not None and hit[0] == stat:
            _VERIFIED.move_to_end(key)
            return hit[1].clone()  # callers may change their frame in place; the cached one stays as read
        data = _read(self.path)
        if problem := self._problem(data):
            raise StaleRefError(
                f"{self.path}: {problem}", hint="rerun the same command: the stage that wrote it is recomputed"
            )
        frame = pl.read_parquet(io.BytesIO(data))
        if stat is not None and len(data) <= _MAX_BYTES:
            _VERIFIED[key] = (stat, frame.clone())
            while len(_VERIFIED) > _KEEP:
                _VERIFIED.popitem(last=False)
        return frame


# Frames read and checked in this process, while their file is untouched (same inode, size, mtime):
# one table read by many stages (the prompts by every generation chunk) is hashed and parsed once.
_KEEP = 4
_MAX_BYTES = 64 * 2**20  # small tables only (the prompts): big ones are read once or twice anyway
_VERIFIED: OrderedDict[tuple[str, str, int], tuple[tuple[int, int, int], pl.DataFrame]] = OrderedDict()


def _stat(path: str) -> tuple[int, int, int] | None:
    if is_url(path):  # an object (a store on object storage): read and checked every time
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _read(path: str) -> bytes | None:
    try:
        return location(path).read_bytes() if is_url(path) else Path(path).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def write_table(
    frame: pl.DataFrame | pa.Table, path: Path, *, schema: pa.Schema | None = None, where: str, fill_nullable: bool = False
) -> TableRef:
    """Write atomically, conformed to `schema` when given (missing nullable columns as nulls with `fill_nullable`)."""
    table = conform(frame, schema, where=where, fill_nullable=fill_nullable) if schema is not None else (
        frame.to_arrow() if isinstance(frame, pl.DataFrame) else frame
    )
    write_atomically(path, lambda tmp: pq.write_table(table, tmp))
    return TableRef(str(path), table.num_rows, file_sha256(path), Path(path).stat().st_size)
