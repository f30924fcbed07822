"""Versioned Parquet datasets: `<store>/<dataset>/vNNNN/{manifest.json, data/<config>/<split>-*.parquet}`.

A version is written to a staging folder and appears by one atomic rename, so readers never see a
half-written version; two writers racing for a number: one wins, the other takes the next number.
Publishing content identical to the latest version returns that version instead of a copy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from prefmill.errors import StoreError

_VERSION = re.compile(r"^v(\d{4,})$")
MANIFEST = "manifest.json"


def default_store() -> Path:
    return Path(os.environ.get("PREFMILL_STORE", "store"))


@dataclass(frozen=True)
class Version:
    dataset: str
    name: str  # v0001
    path: Path
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


def version_names(root: Path, dataset: str) -> list[str]:
    folder = root / dataset
    if not folder.is_dir():
        return []
    names = [p.name for p in folder.iterdir() if _VERSION.match(p.name) and (p / MANIFEST).is_file()]
    return sorted(names, key=lambda n: int(n[1:]))


def read_manifest(root: Path, dataset: str, version: str | None = None) -> dict[str, Any]:
    names = version_names(root, dataset)
    if not names:
        raise StoreError(f"{root / dataset}: no versions of dataset {dataset!r}", hint="run `prefmill run CONFIG` first")
    name = version or names[-1]
    if name.isdigit():
        name = f"v{int(name):04d}"
    if name not in names:
        raise StoreError(f"{root / dataset}: no version {name!r}; versions are {', '.join(names)}")
    return json.loads((root / dataset / name / MANIFEST).read_text())


def previous_iteration(root: Path, dataset: str, engine: str) -> str | None:
    """The latest version made by another model than `engine` (an engine fingerprint, as manifests
    record it): the previous iteration of a self-improvement loop. Versions of the same model (reruns,
    other settings) belong to the same iteration, so the previous folder is not enough."""
    for name in reversed(version_names(root, dataset)):
        if read_manifest(root, dataset, name).get("engine") != engine:
            return name
    return None


def first_iteration(root: Path, dataset: str) -> str | None:
    """The lineage's first version: what the initial model made (Temporal Self-Rewarding's anchor)."""
    names = version_names(root, dataset)
    return names[0] if names else None


def _content_hash(files: dict[str, dict[str, Any]], config: Any) -> str:
    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for rel in sorted(files):
        h.update(f"{rel}:{files[rel]['sha256']}".encode())
    return h.hexdigest()


def publish_version(
    root: Path,
    dataset: str,
    tables: dict[str, pa.Table],
    *,
    config: dict[str, Any],
    info: dict[str, Any] | None = None,
    split: str = "train",
) -> Version:
    """Write `tables` (config name -> table, written with its own schema) as the next version."""
    folder = root / dataset
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
    try:
        files: dict[str, dict[str, Any]] = {}
        for name, table in tables.items():
            rel = f"data/{name}/{split}-00000-of-00001.parquet"
            target = staging / rel
            target.parent.mkdir(parents=True)
            pq.write_table(table, target, compression="zstd")
            files[rel] = {"sha256": file_sha256(target), "rows": table.num_rows, "bytes": target.stat().st_size}
        content_hash = _content_hash(files, config)
        while True:
            names = version_names(root, dataset)
            if names:
                latest = json.loads((folder / names[-1] / MANIFEST).read_text())
                if latest.get("content_hash") == content_hash:
                    shutil.rmtree(staging)
                    return Version(dataset, names[-1], folder / names[-1], latest, created=False)
            # Numbering and parent come from one fresh listing; a folder without manifest still holds its number.
            taken = {int(m.group(1)): p for p in folder.iterdir() if (m := _VERSION.match(p.name))}
            name = f"v{max(taken, default=0) + 1:04d}"
            published = [taken[n].name for n in sorted(taken) if (taken[n] / MANIFEST).is_file()]
            manifest = {
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
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
            try:
                os.rename(staging, folder / name)
            except OSError:  # another writer published this number first: take the next one
                if (folder / name).exists():
                    continue
                raise
            return Version(dataset, name, folder / name, manifest, created=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def datasets_in(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and version_names(root, p.name))
