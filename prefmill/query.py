"""DuckDB over every version in a store: one view per config, with `dataset` and `version` columns.

Read-only by construction: a query is exactly one SELECT statement (no COPY, ATTACH, INSTALL, SET, no
second statement), and it runs with DuckDB's file access switched off except for reading the store's
folder, the configuration locked, so `read_csv('/etc/passwd')` or an extension install fail too. A file
that does not match its version's manifest (missing, another size, an unreadable footer) or a version
whose manifest does not parse is left out of the views with a warning, so one damaged file does not
break every query. A store on object storage is read through its fsspec filesystem, registered on the
connection, with the same paths and the same limits (only the store's prefix is readable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq

from prefmill.errors import StoreError, os_reason
from prefmill.schemas.tables import VERSION_CONFIGS
from prefmill.store import MANIFEST, datasets_in, load_manifest, version_names
from prefmill.store_location import Location, as_location


@dataclass
class Views:
    """The connection and what was left out of it."""

    con: duckdb.DuckDBPyConnection
    skipped: list[str] = field(default_factory=list)  # one line per file or version left out, and why


def _manifest_files(folder: Path | Location, skipped: list[str]) -> dict[str, dict] | None:
    try:
        files = load_manifest(folder / MANIFEST).get("files")
    except StoreError as exc:
        skipped.append(f"{folder}: manifest unreadable ({exc.message}); version left out")
        return None
    if not isinstance(files, dict):
        skipped.append(f"{folder}: manifest unreadable (no file list); version left out")
        return None
    return files


def _intact(path: Location, size: int, expected: dict, skipped: list[str]) -> bool:
    """The file is the one its manifest lists: of the listed size, with a readable footer."""
    if "bytes" in expected and size != expected["bytes"]:
        skipped.append(f"{path}: {size} bytes, manifest says {expected['bytes']}; left out")
        return False
    try:
        with path.open(size=size) as fh:
            pq.read_metadata(fh)
    except (OSError, pq.lib.ArrowInvalid) as exc:
        skipped.append(f"{path}: not readable Parquet ({exc}); left out")
        return False
    return True


@dataclass(frozen=True)
class Published:
    folder: Location
    listed: dict[str, dict]  # the manifest's files: rel -> sha256, rows, bytes
    found: dict[str, dict]  # the files there: rel -> size... (one listing of the version)


def published_versions(root: Path | Location, *, dataset: str = "*", skipped: list[str]) -> list[Published]:
    """Every published version whose manifest parses, with what it lists and what is there."""
    names = datasets_in(root) if dataset == "*" else [dataset]
    found = [(as_location(root) / name / version) for name in names for version in version_names(root, name)]
    return [Published(folder, files, folder.files()) for folder in found
            if (files := _manifest_files(folder, skipped)) is not None]


def _files_of(versions: list[Published], config: str, skipped: list[str]) -> list[str]:
    files = []
    for version in versions:
        for rel in sorted(r for r in version.found if r.startswith(f"data/{config}/") and r.endswith(".parquet")
                          and r.count("/") == 2):
            path = version.folder / "data" / config / rel.rsplit("/", 1)[1]
            if rel not in version.listed:
                skipped.append(f"{path}: not in the manifest; left out")
            elif _intact(path, version.found[rel]["size"], version.listed[rel], skipped):
                files.append(str(path))
    return files


def config_files(root: Path | Location, config: str, *, dataset: str = "*") -> list[str]:
    """Parquet files of `config` in published versions only (not staging, not stray folders), each
    checked against its version's manifest."""
    skipped: list[str] = []
    return _files_of(published_versions(root, dataset=dataset, skipped=skipped), config, skipped)


def connect(root: Path | Location, *, dataset: str = "*") -> Views:
    """An in-memory, read-only connection with a view per config that has at least one published file."""
    root = root.resolve() if isinstance(root, Path) else root.snapshot()
    con, skipped = duckdb.connect(), []
    if isinstance(root, Location):
        con.register_filesystem(root.fs)
    versions = published_versions(root, dataset=dataset, skipped=skipped)
    for config in VERSION_CONFIGS:
        files = _files_of(versions, config, skipped)
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
    con.sql(f"set allowed_directories = ['{_quote(str(root))}/']")
    con.sql("set enable_external_access = false")
    con.sql("set autoinstall_known_extensions = false")
    con.sql("set lock_configuration = true")
    return Views(con, skipped)


def _quote(text: str) -> str:
    return text.replace("'", "''")


def check_select(sql: str) -> None:
    """Refuse anything but one SELECT statement: the store is read-only through `prefmill query`."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise StoreError(f"query failed: {exc}") from None
    if len(statements) != 1:
        raise StoreError(f"query: give exactly one SELECT statement; got {len(statements)}",
                         hint="run statements one at a time; only SELECT (and WITH ... SELECT) is allowed")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise StoreError(f"query: only SELECT is allowed, the store is read-only; got {kind.name}",
                         hint="to export a result, use --format csv or --format json and redirect the output")


def run_query(root: Path | Location, sql: str, *, dataset: str = "*", skipped: list[str] | None = None) -> pl.DataFrame:
    """Run one SELECT over the store's views; a refused, bad or failing query becomes a `StoreError`.
    Files left out of the views are appended to `skipped` when given."""
    check_select(sql)
    try:
        views = connect(root, dataset=dataset)
    except OSError as exc:  # a store on object storage that cannot be reached or read
        raise StoreError(f"{root}: cannot read the store: {os_reason(exc)}") from None
    if skipped is not None:
        skipped.extend(views.skipped)
    try:
        return views.con.sql(sql).pl()
    except duckdb.CatalogException as exc:
        names = [r[0] for r in views.con.sql("select view_name from duckdb_views() where not internal").fetchall()]
        raise StoreError(
            f"query failed: {exc}",
            hint=f"views over {root}: {', '.join(names) or 'none (no published versions yet)'}",
        ) from None
    except duckdb.Error as exc:
        raise StoreError(f"query failed: {exc}") from None
