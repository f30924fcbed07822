"""What changed between two versions of a dataset: rows added, removed and changed per config (matched
by each config's id column), and the manifest stats that moved.

Rows are matched by id (`sample_id`, `pair_id`, `prompt_id`, `chain_id`); an id that repeats within a
version is matched by its occurrence. A row is "changed" when its id is in both versions and any
column the two versions share differs. Every file is read through its manifest's size and sha256, so
a damaged version is reported, never silently compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from prefmill.refs import TableRef
from prefmill.store import read_manifest

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


def _frames(root: Path, dataset: str, manifest: dict[str, Any]) -> dict[str, pl.DataFrame]:
    by_config: dict[str, list[pl.DataFrame]] = {}
    version = manifest["version"]
    for rel, info in sorted(manifest.get("files", {}).items()):
        parts = rel.split("/")
        if len(parts) != 3 or parts[0] != "data" or not rel.endswith(".parquet"):
            continue
        ref = TableRef(str(root / dataset / version / rel), info["rows"], info["sha256"], info.get("bytes", -1))
        by_config.setdefault(parts[1], []).append(ref.read())
    return {config: pl.concat(frames, how="diagonal_relaxed") for config, frames in by_config.items()}


def _keyed(frame: pl.DataFrame, key: str | None, columns: list[str]) -> pl.DataFrame:
    """`_k` (the id and its occurrence) and `_h` (a hash of the shared columns) per row."""
    if frame.width == 0:  # the config is not in this version
        return pl.DataFrame(schema={"_k": pl.String, "_h": pl.UInt64})
    hashed = frame.select(_h=pl.struct(columns).hash(seed=0)) if columns else frame.select(_h=pl.lit(0, pl.UInt64))
    if key is None or key not in frame.columns:
        ident = hashed["_h"].cast(pl.String)  # no id: rows are matched by content
    else:
        ident = frame[key].cast(pl.String).fill_null("")
    occurrence = pl.int_range(pl.len()).over("_id").cast(pl.String)
    return (pl.DataFrame({"_id": ident, "_h": hashed["_h"]})
            .with_columns(_k=pl.col("_id") + "#" + occurrence).select("_k", "_h"))


def diff_config(config: str, old: pl.DataFrame | None, new: pl.DataFrame | None) -> ConfigDiff:
    key = KEYS.get(config)
    old = old if old is not None else pl.DataFrame()
    new = new if new is not None else pl.DataFrame()
    shared = [c for c in new.columns if c in old.columns]
    a, b = _keyed(old, key, shared), _keyed(new, key, shared)
    both = b.join(a, on="_k", how="inner", suffix="_old")
    added = b.join(a, on="_k", how="anti").height
    removed = a.join(b, on="_k", how="anti").height
    changed = int((both["_h"] != both["_h_old"]).sum()) if both.height else 0
    return ConfigDiff(config, key if key in new.columns or key in old.columns else None, old.height, new.height,
                      added, removed, changed)


def _numbers(stats: Any, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(stats, dict):
        for k, v in stats.items():
            out |= _numbers(v, f"{prefix}{k}.")
    elif isinstance(stats, (int, float)) and not isinstance(stats, bool):
        out[prefix.rstrip(".")] = float(stats)
    return out


def diff_versions(root: Path, dataset: str, old: str, new: str) -> tuple[list[ConfigDiff], list[StatDelta]]:
    """Per-config row changes and the stats that differ, from `old` to `new`."""
    m_old, m_new = read_manifest(root, dataset, old), read_manifest(root, dataset, new)
    f_old, f_new = _frames(root, dataset, m_old), _frames(root, dataset, m_new)
    configs = [diff_config(c, f_old.get(c), f_new.get(c)) for c in sorted(set(f_old) | set(f_new))]
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
