"""Versioned Parquet datasets: `<store>/<dataset>/vNNNN/{manifest.json, data/<config>/<split>-*.parquet}`.

A version is written to a staging folder and appears by one atomic rename, so readers never see a
half-written version; two writers racing for a number: one wins, the other takes the next number.
Publishing content identical to the latest version returns that version instead of a copy. A store
on object storage (a `Location`) keeps the same layout and guarantees another way (prefmill.object_store);
every reader here serves both.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from prefmill.errors import StoreError, cut, os_reason
from prefmill.store_checks import check_writable  # noqa: F401  (part of this module's API)
from prefmill.store_location import Location, open_store

_VERSION = re.compile(r"^v(\d{4,})$")
MANIFEST = "manifest.json"
DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
"""What `dataset:` in a recipe may be: a single folder name inside the store (no `/`, no leading `.`)."""
STAGING = ".staging-"
STALE_STAGING_SECONDS = 3600
"""A staging folder untouched this long is a leftover of a killed writer; younger ones may be in use."""


def default_store() -> Path | Location:
    return open_store(None)


@dataclass(frozen=True)
class Version:
    dataset: str
    name: str  # v0001
    path: Path | Location
    manifest: dict[str, Any]
    created: bool  # False when an identical version already existed


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def check_dataset_name(dataset: str) -> None:
    """Refuse a name that is not one folder inside the store (`../x`, `a/b`, `.cache`)."""
    if not DATASET_NAME.fullmatch(dataset):
        raise StoreError(
            f"dataset name {cut(repr(dataset))} is not valid: expected letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
            hint="list datasets with `prefmill query \"select distinct dataset from samples\"`",
        )


def _numbered(root: Path | Location, dataset: str) -> dict[str, bool]:
    """Every entry of the dataset's folder named like a version -> whether its manifest exists. One
    listing of the dataset on an object store; an unreachable store is a `StoreError`."""
    if isinstance(root, Location):
        try:
            rels = (root / dataset).files()
        except OSError as exc:
            raise StoreError(f"{root / dataset}: cannot list the versions: {os_reason(exc)}") from None
        found: dict[str, bool] = {}
        for rel in rels:
            head, _, rest = rel.partition("/")
            if _VERSION.match(head):
                found[head] = found.get(head, False) or rest == MANIFEST
        return found
    folder = root / dataset
    if not folder.is_dir():
        return {}
    return {p.name: (p / MANIFEST).is_file() for p in folder.iterdir() if _VERSION.match(p.name)}


def _by_number(names) -> list[str]:
    return sorted(names, key=lambda n: int(n[1:]))


def missing_manifests(root: Path | Location, dataset: str) -> list[Path | Location]:
    """Version folders without a manifest: an interrupted copy or a deleted manifest. They hold their
    number but are no version: not listed, not queried."""
    return [root / dataset / n for n in _by_number(n for n, ok in _numbered(root, dataset).items() if not ok)]


def version_names(root: Path | Location, dataset: str) -> list[str]:
    return _by_number(n for n, ok in _numbered(root, dataset).items() if ok)


def load_manifest(path: Path | Location) -> dict[str, Any]:
    """A manifest file as a dict, or one clear `StoreError` naming the file and what is wrong."""
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise StoreError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})",
                         hint="the version is damaged: restore the manifest from a backup") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = os_reason(exc) if isinstance(exc, OSError) else "not UTF-8 text"
        raise StoreError(f"{path}: cannot read the manifest: {reason}") from None
    if not isinstance(data, dict):
        raise StoreError(f"{path}: expected a JSON object, got {type(data).__name__}",
                         hint="the version is damaged: restore the manifest from a backup")
    return data


def read_manifest(root: Path | Location, dataset: str, version: str | None = None) -> dict[str, Any]:
    check_dataset_name(dataset)
    names = version_names(root, dataset)
    if not names:
        raise StoreError(f"{root / dataset}: no versions of dataset {dataset!r}", hint="run `prefmill run CONFIG` first")
    name = version or names[-1]
    if name.isdigit():
        name = f"v{int(name):04d}"
    if name not in names:
        raise StoreError(f"{root / dataset}: no version {cut(repr(name))}; versions are {cut(', '.join(names))}")
    return load_manifest(root / dataset / name / MANIFEST)


def previous_iteration(root: Path | Location, dataset: str, engine: str) -> str | None:
    """The latest version made by another model than `engine` (an engine fingerprint, as manifests
    record it): the previous iteration of a self-improvement loop. Versions of the same model (reruns,
    other settings) belong to the same iteration, so the previous folder is not enough."""
    for name in reversed(version_names(root, dataset)):
        if read_manifest(root, dataset, name).get("engine") != engine:
            return name
    return None


def first_iteration(root: Path | Location, dataset: str) -> str | None:
    """The lineage's first version: what the initial model made (Temporal Self-Rewarding's anchor)."""
    names = version_names(root, dataset)
    return names[0] if names else None


def hash_content(files: dict[str, dict[str, Any]], config: Any) -> str:
    """A version's `content_hash`: its recipe and every file's sha256, wherever the store lives."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for rel in sorted(files):
        h.update(f"{rel}:{files[rel]['sha256']}".encode())
    return h.hexdigest()


def write_tables(staging: Path, tables: dict[str, pa.Table], split: str) -> dict[str, dict[str, Any]]:
    """Each table as `data/<config>/<split>-00000-of-00001.parquet` in `staging`: the manifest's file list."""
    files: dict[str, dict[str, Any]] = {}
    for name, table in tables.items():
        rel = f"data/{name}/{split}-00000-of-00001.parquet"
        target = staging / rel
        target.parent.mkdir(parents=True)
        pq.write_table(table, target, compression="zstd")
        files[rel] = {"sha256": file_sha256(target), "rows": table.num_rows, "bytes": target.stat().st_size}
    return files


def identical_latest(root: Path | Location, dataset: str, content_hash: str) -> Version | None:
    """The latest version when it holds exactly this content; a damaged latest one is never identical."""
    names = version_names(root, dataset)
    if not names:
        return None
    try:
        latest = load_manifest(root / dataset / names[-1] / MANIFEST)
    except StoreError:
        return None
    if latest.get("content_hash") != content_hash:
        return None
    return Version(dataset, names[-1], root / dataset / names[-1], latest, created=False)


def next_manifest(root: Path | Location, dataset: str, *, content_hash: str, config: dict[str, Any],
                  files: dict[str, dict[str, Any]], info: dict[str, Any] | None, after: int = 0) -> dict[str, Any]:
    """The manifest of the next free number above `after`. Numbering and parent come from one fresh
    listing; a folder without manifest still holds its number."""
    taken = _numbered(root, dataset)
    name = f"v{max([after, *(int(n[1:]) for n in taken)]) + 1:04d}"
    published = _by_number(n for n, ok in taken.items() if ok)
    return {
        "dataset": dataset,
        "version": name,
        "parent": published[-1] if published else None,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "git_sha": git_sha(),
        "content_hash": content_hash,
        "config": config,
        "files": files,
        **(info or {}),
    }


def publish_version(
    root: Path | Location,
    dataset: str,
    tables: dict[str, pa.Table],
    *,
    config: dict[str, Any],
    info: dict[str, Any] | None = None,
    split: str = "train",
) -> Version:
    """Write `tables` (config name -> table, written with its own schema) as the next version.

    The version folder is created with the umask's mode (0755 under the usual 022), so other users of
    a shared store can read it. A write that fails (a full disk, no permission) leaves nothing behind and
    raises a `StoreError`; staging folders of writers killed more than an hour ago are removed."""
    if isinstance(root, Location):
        from prefmill.object_store import publish_object

        return publish_object(root, dataset, tables, config=config, info=info, split=split)
    folder = root / dataset
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(folder)
        staging = _make_staging(folder)
    except OSError as exc:
        raise StoreError(f"{folder}: cannot publish a version: {os_reason(exc)}", hint=_WRITE_HINT) from None
    try:
        files = write_tables(staging, tables, split)
        content_hash = hash_content(files, config)
        while True:
            if (same := identical_latest(root, dataset, content_hash)) is not None:
                shutil.rmtree(staging)
                return same
            manifest = next_manifest(root, dataset, content_hash=content_hash, config=config, files=files, info=info)
            name = manifest["version"]
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
            try:
                os.rename(staging, folder / name)
            except OSError:  # another writer published this number first: take the next one
                if (folder / name).exists():
                    continue
                raise
            return Version(dataset, name, folder / name, manifest, created=True)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise StoreError(f"{folder}: cannot publish a version: {os_reason(exc)}", hint=_WRITE_HINT) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


_WRITE_HINT = "free space or get write access in the store, then rerun the same command: finished stages are cached"


def _make_staging(folder: Path) -> Path:
    """A fresh staging folder; `os.mkdir` (unlike `mkdtemp`'s 0700) follows the umask."""
    while True:
        path = folder / f"{STAGING}{secrets.token_hex(8)}"
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue


def _newest_mtime(path: Path) -> float:
    newest = path.stat().st_mtime
    for parent, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            try:
                newest = max(newest, os.stat(os.path.join(parent, name)).st_mtime)
            except OSError:
                continue
    return newest


def _remove_stale_staging(folder: Path, *, max_age: float = STALE_STAGING_SECONDS) -> list[Path]:
    """Remove staging folders in which nothing changed for `max_age` seconds (a SIGKILLed writer's)."""
    removed = []
    now = time.time()
    for path in folder.glob(f"{STAGING}*"):
        try:
            if path.is_dir() and now - _newest_mtime(path) > max_age:
                shutil.rmtree(path)
                removed.append(path)
        except OSError:  # another writer removed or renamed it meanwhile
            continue
    return removed


def datasets_in(root: Path | Location) -> list[str]:
    if isinstance(root, Location):
        try:
            names = root.folders()
        except OSError as exc:
            raise StoreError(f"{root}: cannot list the datasets: {os_reason(exc)}") from None
    else:
        names = [p.name for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    return sorted(n for n in names if not n.startswith(".") and version_names(root, n))
