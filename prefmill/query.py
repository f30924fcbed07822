"""DuckDB over every version in a store: one view per config, with `dataset` and `version` columns."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from prefmill.errors import StoreError
from prefmill.schemas.tables import VERSION_CONFIGS
from prefmill.store import datasets_in, version_names


def config_files(root: Path, config: str, *, dataset: str = "*") -> list[str]:
    """Parquet files of `config` in published versions only (not staging, not stray folders)."""
    names = datasets_in(root) if dataset == "*" else [dataset]
    return [
        str(f)
        for name in names
        for version in version_names(root, name)
        for f in sorted((root / name / version / "data" / config).glob("*.parquet"))
    ]


def connect(root: Path, *, dataset: str = "*") -> duckdb.DuckDBPyConnection:
    """An in-memory connection with a view per config that has at least one published file."""
    con = duckdb.connect()
    for config in VERSION_CONFIGS:
        files = config_files(root.resolve(), config, dataset=dataset)
        if not files:
            continue
        listed = ", ".join(f"'{_quote(f)}'" for f in files)
        con.sql(
            f"""
            create view {config} as
            select regexp_extract(filename, '/([^/]+)/(v[0-9]+)/data/', 1) as dataset,
                   regexp_extract(filename, '/([^/]+)/(v[0-9]+)/data/', 2) as version,
                   * exclude (filename)
            from read_parquet([{listed}], filename = true, union_by_name = true)
            """
        )
    return con


def _quote(text: str) -> str:
    return text.replace("'", "''")


def run_query(root: Path, sql: str, *, dataset: str = "*") -> pl.DataFrame:
    """Run `sql` over the store's views; a missing view or bad SQL becomes a `StoreError`."""
    con = connect(root, dataset=dataset)
    try:
        return con.sql(sql).pl()
    except duckdb.CatalogException as exc:
        views = [r[0] for r in con.sql("select view_name from duckdb_views() where not internal").fetchall()]
        raise StoreError(
            f"query failed: {exc}",
            hint=f"views over {root}: {', '.join(views) or 'none (no published versions yet)'}",
        ) from None
    except duckdb.Error as exc:
        raise StoreError(f"query failed: {exc}") from None
