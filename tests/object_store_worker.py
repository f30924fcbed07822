"""A writer in its own process for tests/test_object_store.py: says `ready`, waits for the go file,
publishes its own table to the URL store, prints the version. `kill-in-staging` / `kill-after-claim`
SIGKILL the process part-way, as a crash or the OOM killer would."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pyarrow as pa

from prefmill.store import publish_version
from prefmill.store_location import Location, open_store


def writer_tables(writer: int, rows: int = 200) -> dict:
    """Tables only this writer makes: every row names it, so mixed files would show."""
    ids = [f"w{writer}-{i}" for i in range(rows)]
    return {
        "samples": pa.table({"sample_id": ids, "writer": [writer] * rows, "text": [f"{i} by {writer}" * 20 for i in ids]}),
        "pairs": pa.table({"pair_id": ids[: rows // 2], "writer": [writer] * (rows // 2)}),
        "votes": pa.table({"prompt_id": ids[:10], "writer": [writer] * len(ids[:10])}),
    }


def _die_on(method: str) -> None:
    real = getattr(Location, method)

    def once_then_die(self, *args, **kwargs):
        real(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    setattr(Location, method, once_then_die)


def main(url: str, writer: int, mode: str, go: str) -> None:
    if mode == "kill-in-staging":
        _die_on("upload")
    elif mode == "kill-after-claim":
        _die_on("copy_to")
    root = open_store(url)
    print("ready", flush=True)
    while not Path(go).exists():
        time.sleep(0.005)
    version = publish_version(root, "ds", writer_tables(writer), config={"writer": writer})
    print(version.name, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
