"""A config of a published version, read through its manifest: every file checked against the size and
sha256 the manifest records, then conformed to the config's schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from prefmill.errors import StoreError, cut, os_reason
from prefmill.refs import StaleRefError, TableRef
from prefmill.schemas.tables import VERSION_CONFIGS
from prefmill.schemas.validate import conform
from prefmill.store import read_manifest


def config_paths(manifest: dict[str, Any], config: str) -> dict[str, dict[str, Any]]:
    """`data/<config>/*.parquet` of a manifest's `files`, relative path -> its size, sha256 and rows."""
    files = manifest.get("files")
    if not isinstance(files, dict):
        return {}
    return {rel: info for rel, info in sorted(files.items())
            if rel.startswith(f"data/{config}/") and rel.endswith(".parquet") and rel.count("/") == 2}


def configs_of(manifest: dict[str, Any]) -> list[str]:
    """The configs a version holds, by name."""
    files = manifest.get("files") if isinstance(manifest.get("files"), dict) else {}
    return sorted({rel.split("/")[1] for rel in files if rel.startswith("data/") and rel.count("/") == 2})


def read_config(root: Path, dataset: str, version: str | None, config: str, *, needed_by: str) -> tuple[dict[str, Any], pa.Table]:
    """(manifest, table) of `config` in a version (default: the latest). A version without it, or with a
    file that no longer matches the manifest, raises a `StoreError` naming it; `needed_by` says who asked."""
    manifest = read_manifest(root, dataset, version)
    name = manifest.get("version", version)
    paths = config_paths(manifest, config)
    if not paths:
        has = ", ".join(configs_of(manifest)) or "none"
        flow = "a process-supervision version (`flow: process`)" if config == "steps" else "a preference version"
        raise StoreError(f"{dataset} {name}: no `{config}` config (it has {has}); {needed_by} needs {flow}",
                         hint=f"pick a version that has `{config}`: `prefmill versions {dataset}` lists them")
    tables = []
    for rel, info in paths.items():
        path = root / dataset / str(name) / rel
        try:
            ref = TableRef(str(path), int(info["rows"]), str(info["sha256"]), int(info.get("bytes", -1)))
        except (KeyError, TypeError, ValueError):
            raise StoreError(f"{root / dataset / str(name)}: manifest entry for {rel} lacks rows/sha256",
                             hint="the version is damaged: restore the manifest from a backup") from None
        if problem := ref.problem():
            raise StaleRefError(f"{path}: {problem}", hint="the version was changed after it was published")
        try:
            tables.append(pq.read_table(path))
        except (OSError, pa.ArrowInvalid) as exc:
            raise StoreError(f"{path}: cannot read it: {os_reason(exc) if isinstance(exc, OSError) else cut(exc)}") from None
    schema = VERSION_CONFIGS[config]
    where = f"{dataset} {name} {config}"
    return manifest, pa.concat_tables([conform(t, schema, where=where, fill_nullable=True) for t in tables])
