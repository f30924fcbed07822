"""Run the preference flow on a Ray runner and SIGKILL this driver once two generate chunks are written.

    python -m tests.flows.ray_kill_worker RECIPE_JSON STORE
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path


def _kill_after_two_chunks(store: Path) -> None:
    while len(list(store.glob(".cache/*/generate/*.parquet"))) < 2:
        time.sleep(0.005)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    from prefmill.flows.preference import preference

    recipe, store = json.loads(sys.argv[1]), Path(sys.argv[2])
    threading.Thread(target=_kill_after_two_chunks, args=(store,), daemon=True).start()
    preference(config=recipe, store=str(store))
    sys.exit("the flow finished before two chunks were written")
