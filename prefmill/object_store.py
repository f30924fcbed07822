"""Publishing a version to a store on object storage, where nothing renames atomically.

The same guarantees as a local store, by other means: every data file is first uploaded under
`<dataset>/.staging/<writer>/`; the version number is claimed by a create-only write of
`vNNNN/.claim` (S3's conditional put), so of two writers exactly one owns a number and the other
takes the next; the owner copies its staged files into `vNNNN/data/` and writes `vNNNN/manifest.json`
last. Readers list only versions whose manifest exists, so they never see a version without its
files. A killed writer leaves a staging prefix (removed after an hour by the next writer) or a
claimed number without manifest, which holds its number and is no version.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa

from prefmill.errors import StoreError, os_reason
from prefmill.store import (
    MANIFEST, STALE_STAGING_SECONDS, Version, hash_content, identical_latest, next_manifest, write_tables,
)
from prefmill.store_location import Location, check_create_only

STAGING = ".staging"
CLAIM = ".claim"
_HINT = "check the bucket, the endpoint and the credentials, then rerun the same command: finished stages are cached"


def publish_object(root: Location, dataset: str, tables: dict[str, pa.Table], *, config: dict[str, Any],
                   info: dict[str, Any] | None = None, split: str = "train") -> Version:
    """`store.publish_version` for a `Location`: stage, claim a number, copy, manifest last."""
    check_create_only(root)
    folder = root / dataset
    writer = uuid.uuid4().hex
    staging = folder / STAGING / writer
    try:
        with tempfile.TemporaryDirectory(prefix="prefmill-publish-") as tmp:
            files = write_tables(Path(tmp), tables, split)
            content_hash = hash_content(files, config)
            if (same := identical_latest(root, dataset, content_hash)) is not None:
                return same  # nothing uploaded for a rerun
            remove_stale_staging(folder)
            try:
                for rel in files:
                    (staging / rel).upload(Path(tmp) / rel)
                return _claim(root, dataset, staging, writer, content_hash=content_hash, config=config,
                              files=files, info=info)
            finally:
                try:
                    staging.remove()
                except OSError:  # left for the next writer's clean-up
                    pass
    except OSError as exc:
        raise StoreError(f"{folder}: cannot publish a version: {os_reason(exc)}", hint=_HINT) from None


def _claim(root: Location, dataset: str, staging: Location, writer: str, *, content_hash: str,
           config: dict[str, Any], files: dict[str, dict[str, Any]], info: dict[str, Any] | None) -> Version:
    lost = 0  # the highest number another writer took from us: a listing that lags cannot make us spin
    while True:
        if (same := identical_latest(root, dataset, content_hash)) is not None:
            return same
        manifest = next_manifest(root, dataset, content_hash=content_hash, config=config, files=files,
                                 info=info, after=lost)
        name = manifest["version"]
        target = root / dataset / name
        claim = {"writer": writer, "claimed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        if not (target / CLAIM).create(json.dumps(claim).encode()):
            lost = int(name[1:])
            continue  # another writer holds this number: take the next one
        for rel in files:
            (staging / rel).copy_to(target / rel)
        if not (target / MANIFEST).create((json.dumps(manifest, indent=2) + "\n").encode()):
            raise StoreError(f"{target}: another writer wrote this version's manifest although it was claimed here",
                             hint="the store's create-only writes are not reliable: publish to a local folder")
        return Version(dataset, name, target, manifest, created=True)


def _seconds(info: dict[str, Any]) -> float:
    """When an object was written, as the backend says it (S3: LastModified; local, memory: mtime, created)."""
    value = info.get("LastModified") or info.get("mtime") or info.get("created") or 0.0
    return value.timestamp() if isinstance(value, dt.datetime) else float(value)


def remove_stale_staging(folder: Location, *, max_age: float = STALE_STAGING_SECONDS) -> list[str]:
    """Remove the staging prefixes of writers in which nothing was written for `max_age` seconds."""
    newest: dict[str, float] = {}
    for rel, info in (folder / STAGING).files().items():
        writer = rel.split("/", 1)[0]
        newest[writer] = max(newest.get(writer, 0.0), _seconds(info))
    removed = []
    for writer, written in sorted(newest.items()):
        if time.time() - written > max_age:
            try:
                (folder / STAGING / writer).remove()
            except OSError:  # another writer removed it meanwhile
                continue
            removed.append(writer)
    return removed
