"""Before a run: can this process write the store? Checked up front so a bad `--store` is one clear
error before Prefect starts, not a failure in the last stage."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from prefmill.errors import StoreError, os_reason
from prefmill.store_location import Location, check_create_only, work_folder


def check_writable(root: Path | Location, dataset: str) -> None:
    """Before a run: the store, its `.cache` and the dataset's folder are folders this process can write.
    For a URL store: the store takes create-only writes, and its local work folder is writable.

    Nothing is created unless every check passes (then the store folder itself, as the run would)."""
    if isinstance(root, Location):
        check_create_only(root)
        _check_folders(work_folder(root), [dataset, "prefect-results"], hint="set PREFMILL_WORK to a folder you can write")
        return
    if root.exists() and not root.is_dir():
        raise StoreError(f"{root}: the store is a file, not a folder", hint="give --store a folder (or a path to create)")
    for path, what in ((root / dataset, "a dataset folder"), (root / ".cache", "a folder")):
        if path.exists() and not path.is_dir():
            raise StoreError(f"{path}: is a file, not {what}", hint="move it away; prefmill keeps its own folders there")
    _check_folders(root, [dataset, ".cache", ".cache/rollouts", f".cache/{dataset}"],
                   hint="give --store a folder you can write, or ask for write access")


def _check_folders(root: Path, inside: list[str], *, hint: str) -> None:
    """`root` can be created (it is) and it and the folders `inside` it that exist take a new file."""
    existing = next((p for p in (root, *root.absolute().parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise StoreError(f"{root}: cannot create the store: {existing} is a file, not a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{root}: cannot create the store: {os_reason(exc)}", hint=hint) from None
    for folder in (root, *(root / rel for rel in inside)):
        if not folder.is_dir():
            continue
        try:
            fd, probe = tempfile.mkstemp(prefix=".prefmill-probe-", dir=folder)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StoreError(f"{folder}: cannot write to the store: {os_reason(exc)}", hint=hint) from None
