"""Run a recipe and SIGKILL this process at one chosen point (tests/flows/test_kill_points.py).

    python -m tests.flows.kill_points_worker SPEC_JSON

SPEC_JSON: {"recipe": {...}, "store": "...", "flow": "preference" | "process", "kill": KILL}, with KILL
either {"purpose": P, "nth": N} (the N-th engine call, 1-based, whose first request has purpose P;
with "needs_checkpoint": true, only counting calls made once an OmegaPRM checkpoint is on disk) or
{"commit": true} (inside `prefmill.store.publish_version`, when the staging folder, manifest
included, is written and about to be renamed into a version folder).

The registered engine is the recipe's own scripted engine behind a wrapper with the same
`fingerprint` (so the rollout cache and the stage cache keys are the ones an uninterrupted run
uses). Just before killing, the worker writes `<store>/kill-point.json`: the call in flight (its
request ids) or the staging folder, so the test can check the kill came where it was meant to, and
its live children (its temporary Prefect server), so the test can check none of them outlives it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from pathlib import Path

_VERSION = re.compile(r"^v\d{4,}$")


def _children() -> list[list]:
    """[pid, command line] of this process's live children (its temporary Prefect server)."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat.rpartition(")")[2].split()[1]) == os.getpid():
                found.append([int(entry), Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()])
        except (OSError, ValueError):
            pass
    return found


def _die(store: Path, what: dict) -> None:
    marker = store / "kill-point.json"
    what = what | {"pid": os.getpid(), "children": _children()}
    with open(marker, "w") as fh:
        fh.write(json.dumps(what))
        fh.flush()
        os.fsync(fh.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    from prefmill.config import validate_config
    from prefmill.engines import engine_for, register_engine
    from prefmill.sources import load_prompts

    spec = json.loads(sys.argv[1])
    recipe, store, kill = spec["recipe"], Path(spec["store"]), spec["kill"]
    store.mkdir(parents=True, exist_ok=True)
    cfg = validate_config(recipe)
    prompts = load_prompts(cfg.source)
    inner = engine_for(cfg.engine, references=dict(zip(prompts["question"], prompts["reference"])))

    class KillAtCall:
        fingerprint = inner.fingerprint  # the real engine's: cache keys match the uninterrupted run's

        def __init__(self) -> None:
            self.seen = 0

        def generate(self, requests):
            counted = requests and requests[0].purpose == kill.get("purpose") and (
                not kill.get("needs_checkpoint") or list(store.glob(".cache/*/omegaprm/*-checkpoints/*.json")))
            if counted:
                self.seen += 1
                if self.seen == kill["nth"]:
                    _die(store, {"purpose": requests[0].purpose, "nth": self.seen, "ids": [r.request_id for r in requests]})
            return inner.generate(requests)

    register_engine(cfg.engine, KillAtCall())

    if kill.get("commit"):
        real_rename = os.rename

        def rename(src, dst, *args, **kwargs):
            src_path, dst_path = Path(src), Path(dst)
            if src_path.name.startswith(".staging-") and _VERSION.match(dst_path.name):
                _die(store, {"commit": True, "staging": str(src_path), "target": str(dst_path),
                             "staged": sorted(str(p.relative_to(src_path)) for p in src_path.rglob("*") if p.is_file())})
            return real_rename(src, dst, *args, **kwargs)

        os.rename = rename

    if spec["flow"] == "process":
        from prefmill.flows.process import process as flow
    else:
        from prefmill.flows.preference import preference as flow
    flow(config=recipe, store=str(store))
    sys.exit(f"the flow finished without reaching the kill point {kill}")
