"""What changed between two versions of a dataset: rows added, removed and changed per config (matched
by each config's id column), and the manifest stats that moved.

Rows are matched by id (`sample_id`, `pair_id`, `prompt_id`, `chain_id`); an id that repeats within a
version is matched by its occurrence. A row is "changed" when its id is in both versions and any
column the two versions share (with the same type) differs. Every file is read through its manifest's size and sha256, so
a damaged version is reported, never silently compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from prefmill.refs import StaleRefError, TableRef
from prefmill.store import read_manifest
from prefmill.store_location import Location, open_input

KEYS = {"samples": "sample_id", "pairs": "pair_id", "votes": "prompt_id", "steps": "chain_id",
        "step_pairs": "pair_id", "rise_steps": "pair_id"}


@dataclass(frozen=True)
class ConfigDiff:
    config: str
    key: str | None
    old_rows: int
    new_rows: int
    added: int
    removed: int
    changed: int

    @property
    def unchanged(self) -> int:
        return self.new_rows - self.added - self.changed


@dataclass(frozen=True)
class StatDelta:
    stat: str
    old: float | None
    new: float | None

    @property
    def delta(self) -> float | None:
        return None if self.old is None or self.new is None else self.new - self.old


def _files(root: Path | Location, dataset: str, manifest: dict[str, Any]) -> dict[str, list[str]]:
    """config -> its files, each checked against the manifest's size and sha256 first."""
    by_config: dict[str, list[str]] = {}
    version = manifest["version"]
    for rel, info in sorted(manifest.get("files", {}).items()):
        parts = rel.split("/")
        if len(parts) != 3 or parts[0] != "data" or not rel.endswith(".parquet"):
            continue
        ref = TableRef(str(root / dataset / version / rel), info["rows"], info["sha256"], info.get("bytes", -1))
        if problem := ref.problem():
            raise StaleRefError(f"{ref.path}: {problem}", hint="the version was changed after it was published")
        by_config.setdefault(parts[1], []).append(ref.path)
    return by_config


def _columns(paths: list[str]) -> dict[str, str]:
    """column -> its Arrow type, over the config's files."""
    return {f.name: str(f.type) for p in paths for f in pq.read_schema(open_input(p))}


def _keyed(paths: list[str], key: str | None, columns: list[str]) -> pl.DataFrame:
    """`_k` (the id and its occurrence) and `_h` (a hash of the shared columns) per row; only these
    two columns are kept in memory, so a diff of 1M-row versions stays small."""
    if not paths:  # the config is not in this version
        return pl.DataFrame(schema={"_k": pl.String, "_h": pl.UInt64})
    frame = pl.concat([pl.scan_parquet(open_input(p)) for p in paths], how="diagonal_relaxed")
    hashed = pl.struct(columns).hash(seed=0) if columns else pl.lit(0, pl.UInt64)
    ident = pl.col(key).cast(pl.String).fill_null("") if key in columns else hashed.cast(pl.String)  # no id: by content
    return (frame.select(_id=ident, _h=hashed)
            .with_columns(_k=pl.col("_id") + "#" + pl.int_range(pl.len()).over("_id").cast(pl.String))
            .select("_k", "_h").collect())


def diff_config(config: str, old: list[str], new: list[str]) -> ConfigDiff:
    key = KEYS.get(config)
    old_columns, new_columns = _columns(old), _columns(new)
    # Compared: the columns both versions have with the same type (a hash depends on the type, so a
    # column whose type changed would make every row look changed).
    shared = ([c for c, t in new_columns.items() if old_columns.get(c) == t] if old and new
              else list(new_columns or old_columns))
    a, b = _keyed(old, key, shared), _keyed(new, key, shared)
    both = b.join(a, on="_k", how="inner", suffix="_old")
    added = b.join(a, on="_k", how="anti").height
    removed = a.join(b, on="_k", how="anti").height
    changed = int((both["_h"] != both["_h_old"]).sum()) if both.height else 0
    return ConfigDiff(config, key if key in shared else None, a.height, b.height,
                      added, removed, changed)


def _numbers(stats: Any, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(stats, dict):
        for k, v in stats.items():
            out |= _numbers(v, f"{prefix}{k}.")
    elif isinstance(stats, (int, float)) and not isinstance(stats, bool):
        out[prefix.rstrip(".")] = float(stats)
    return out


def diff_versions(root: Path | Location, dataset: str, old: str, new: str) -> tuple[list[ConfigDiff], list[StatDelta]]:
    """Per-config row changes and the stats that differ, from `old` to `new`."""
    m_old, m_new = read_manifest(root, dataset, old), read_manifest(root, dataset, new)
    f_old, f_new = _files(root, dataset, m_old), _files(root, dataset, m_new)
    configs = [diff_config(c, f_old.get(c, []), f_new.get(c, [])) for c in sorted(set(f_old) | set(f_new))]
    s_old, s_new = _numbers(m_old.get("stats")), _numbers(m_new.get("stats"))
    stats = [StatDelta(k, s_old.get(k), s_new.get(k)) for k in sorted(set(s_old) | set(s_new))
             if s_old.get(k) != s_new.get(k)]
    return configs, stats


def diff_tables(dataset: str, old: str, new: str, configs: list[ConfigDiff], stats: list[StatDelta]):
    """The two rich tables `prefmill diff` prints."""
    from rich.table import Table

    rows = Table(title=f"{dataset}: {old} -> {new}")
    for col in ("config", "matched by", old, new, "added", "removed", "changed", "unchanged"):
        rows.add_column(col, justify="left" if col in ("config", "matched by") else "right")
    for c in configs:
        rows.add_row(c.config, c.key or "content", *(str(v) for v in (c.old_rows, c.new_rows, c.added, c.removed,
                                                                     c.changed, c.unchanged)))
    moved = Table(title="stats that differ")
    for col in ("stat", old, new, "delta"):
        moved.add_column(col, justify="left" if col == "stat" else "right")
    show = lambda v: "-" if v is None else f"{v:g}"  # noqa: E731
    for s in stats:
        moved.add_row(s.stat, show(s.old), show(s.new), show(s.delta))
    return rows, moved
