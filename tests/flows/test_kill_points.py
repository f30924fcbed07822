"""kill -9 at 11 points of three scripted recipes: the rerun publishes exactly what an uninterrupted run
publishes, sends the engine only the call that was in flight and the calls after it, leaves no process
behind and never leaves a half-written version.

Every point is one worker subprocess (tests/flows/kill_points_worker.py) in a session of its own, with
its own store and Prefect home (so its own temporary Prefect server), that SIGKILLs itself at the point:
at the start of the N-th engine call whose first request has a given `purpose`, or inside
`prefmill.store.publish_version` between the written staging folder and the rename that publishes it.
The workers run in parallel while the three uninterrupted reference runs (one a recipe, each in its
own store) run in this process. Each test then reruns its recipe in this process, in the killed store.

The engine (the recipe's scripted engine, wrapped with its real fingerprint) sits where a model would,
behind the rollout cache: what it sees is what a model would have had to generate. A reference run
records its calls in order, c_0 .. c_{m-1}; a point that killed call c_k (commit: k = m, nothing in
flight) asserts, per point:

    rerun calls == [c_k, c_{k+1}, ..., c_{m-1}]    (same purposes, same request ids, same order)
    rerun requests == bound == sum(len(c_i) for i >= k)

that is: the call in flight is sent again whole, nothing the killed run finished is (finished chunks
and stages come back from the stage cache, rollouts of finished calls from the rollout cache, finished
OmegaPRM questions from their checkpoints), and the stages after the kill need what they needed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from prefmill.config import validate_config
from prefmill.engines import _ENGINES, engine_for, register_engine
from prefmill.query import run_query
from prefmill.sources import load_prompts
from prefmill.store import MANIFEST, version_names
from tests.conftest import ROOT
from tests.flows.test_golden import version_hash

WORKER_TIMEOUT = 480  # seconds for all workers together (a loaded 2-core machine needs ~150)
CHECKPOINTS = ".cache/*/omegaprm/*-checkpoints/*.json"

# Three small recipes. `pref`: 9 prompts in 3 generation chunks, both judges, RISE with LLM edits and
# continuations. `mc`: Math-Shepherd labels and the consensus judge. `omega`: OmegaPRM (p_error 0.6 so
# some questions need more than one round of search).
RECIPES: dict[str, dict[str, Any]] = {
    "pref": {
        "dataset": "kill-pref", "flow": "preference", "source": {"limit": 9},
        "engine": {"kind": "scripted", "p_error": 0.4}, "generate": {"n": 2, "chunk_size": 3, "seed": 7},
        "judge": {"pointwise": True, "pairwise": True},
        "rise": {"enabled": True, "editor": "llm", "use_reference": True, "edits_per_solution": 2, "ratio": None},
    },
    "mc": {
        "dataset": "kill-mc", "flow": "process", "source": {"limit": 6},
        "engine": {"kind": "scripted", "p_error": 0.4}, "generate": {"n": 2, "chunk_size": 3, "seed": 7},
        "process": {"method": "mc", "rollouts": 4, "chains": "both", "consensus": True},
    },
    "omega": {
        "dataset": "kill-omega", "flow": "process", "source": {"limit": 6, "offset": 8},
        "engine": {"kind": "scripted", "p_error": 0.6}, "generate": {"n": 2, "chunk_size": 3, "seed": 7},
        "process": {"method": "omegaprm", "rollouts": 4, "budget": 40, "chains": "samples"},
    },
}


@dataclass(frozen=True)
class Point:
    id: str
    recipe: str
    kill: dict[str, Any]


POINTS = [
    Point("generate-chunk-1-of-3", "pref", {"purpose": "generate", "nth": 1}),
    Point("generate-chunk-2-of-3", "pref", {"purpose": "generate", "nth": 2}),
    Point("judge-pointwise", "pref", {"purpose": "judge_pointwise", "nth": 1}),
    Point("judge-pairwise", "pref", {"purpose": "judge_pairwise", "nth": 1}),
    Point("rise-edit", "pref", {"purpose": "rise_edit", "nth": 1}),
    Point("rise-continue", "pref", {"purpose": "rise_continue", "nth": 1}),
    Point("commit-preference", "pref", {"commit": True}),
    Point("mc-label", "mc", {"purpose": "rollout", "nth": 1}),
    Point("consensus-judge", "mc", {"purpose": "first_error", "nth": 1}),
    Point("commit-process-mc", "mc", {"commit": True}),
    # the first rollout call made once a question is checkpointed: a later round of the search
    Point("omegaprm-mid-search", "omega", {"purpose": "rollout", "nth": 1, "needs_checkpoint": True}),
]


@dataclass(frozen=True)
class Call:
    purpose: str
    ids: tuple[str, ...]
    checkpoints: int  # OmegaPRM checkpoints on disk when the call was made


@dataclass
class Reference:
    calls: list[Call]
    hash: str
    seconds: float


@dataclass
class Worker:
    point: Point
    store: Path
    home: Path
    log: Path
    proc: subprocess.Popen
    group_at_exit: list[tuple[int, str]] = field(default_factory=list)  # (pid, command) in its group once it died
    left_after_cleanup: list[int] = field(default_factory=list)
    group_gone: bool = False
    timed_out: bool = False


@dataclass
class KillRuns:
    recipes: dict[str, dict[str, Any]]
    references: dict[str, Reference]
    workers: dict[str, Worker]


def _recipe(name: str, train: Path) -> dict[str, Any]:
    spec = json.loads(json.dumps(RECIPES[name]))
    spec["source"] = {"path": str(train)} | spec["source"]
    return validate_config(spec).model_dump(mode="json")


def _flow(recipe: dict[str, Any]):
    if recipe["flow"] == "process":
        from prefmill.flows.process import process

        return process
    from prefmill.flows.preference import preference

    return preference


class Recording:
    """The recipe's own scripted engine, recording every call that reaches it (same fingerprint)."""

    def __init__(self, recipe: dict[str, Any], store: Path) -> None:
        cfg = validate_config(recipe)
        prompts = load_prompts(cfg.source)
        held = dict(_ENGINES)  # a fresh engine, never one another run registered for the same config
        _ENGINES.clear()
        try:
            self.inner = engine_for(cfg.engine, references=dict(zip(prompts["question"], prompts["reference"])))
        finally:
            _ENGINES.update(held)
        self.fingerprint = self.inner.fingerprint
        self.store, self.calls = store, []
        register_engine(cfg.engine, self)

    def generate(self, requests):
        if requests:
            self.calls.append(Call(requests[0].purpose, tuple(r.request_id for r in requests),
                                   len(list(self.store.glob(CHECKPOINTS)))))
        return self.inner.generate(requests)


def _run(recipe: dict[str, Any], store: Path) -> tuple[dict[str, Any], list[Call]]:
    """Run `recipe` in this process on a recording engine; the registry is left as it was."""
    held = dict(_ENGINES)
    try:
        engine = Recording(recipe, store)
        result = _flow(recipe)(config=recipe, store=str(store))
    finally:
        _ENGINES.clear()
        _ENGINES.update(held)
    return result, engine.calls


def _killed_call(point: Point, calls: list[Call]) -> int:
    """Index in the reference's calls of the call the worker killed; commit: len(calls)."""
    if point.kill.get("commit"):
        return len(calls)
    seen = 0
    for k, call in enumerate(calls):
        if call.purpose == point.kill["purpose"] and (not point.kill.get("needs_checkpoint") or call.checkpoints):
            seen += 1
            if seen == point.kill["nth"]:
                return k
    raise AssertionError(f"{point.id}: the reference run makes no such call: {[c.purpose for c in calls]}")


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _in_group(pgid: int) -> list[tuple[int, str]]:
    found = []
    for pid in _pids():
        try:
            if os.getpgid(pid) == pgid:
                found.append((pid, Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120]))
        except (ProcessLookupError, PermissionError, FileNotFoundError):
            pass
    return found


def _with_home(home: Path) -> list[int]:
    """Live processes started with PREFECT_HOME=home (the worker and anything it spawned, in any group)."""
    needle = f"PREFECT_HOME={home}".encode()
    found = []
    for pid in _pids():
        try:
            if needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                found.append(pid)
        except (ProcessLookupError, PermissionError, FileNotFoundError):
            pass
    return found


def _env(home: Path) -> dict[str, str]:
    """A Prefect home of its own, and no API URL: a worker starts its own temporary server."""
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PYTEST_CURRENT_TEST")}
    return env | {"PREFECT_HOME": str(home), "PREFECT_MEMO_STORE_PATH": str(home / "memo_store.toml"),
                  "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}  # all the servers start at once


def _start(point: Point, recipe: dict[str, Any], base: Path, template: Path) -> Worker:
    folder = base / point.id
    store, home, log = folder / "store", folder / "prefect-home", folder / "worker.log"
    shutil.copytree(template, home)  # a used home: its database is migrated already (saves ~3 s CPU a server)
    env = _env(home)
    spec = {"recipe": recipe, "store": str(store), "flow": recipe["flow"], "kill": point.kill}
    with log.open("wb") as out:  # a file, not a pipe: the worker's orphaned Prefect server keeps pipes open
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.flows.kill_points_worker", json.dumps(spec)],
            cwd=ROOT, env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT,
        )
    return Worker(point, store, home, log, proc)


def _reap(worker: Worker, deadline: float) -> None:
    """Wait for the worker, then SIGKILL its process group (its orphaned Prefect server) and check that
    nothing of it is left: the group is gone and no live process carries its PREFECT_HOME."""
    try:
        worker.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        worker.timed_out = True
    pgid = worker.proc.pid  # start_new_session: the worker leads its own group
    worker.group_at_exit = _in_group(pgid)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    worker.proc.wait(timeout=30)
    until = time.monotonic() + 15
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            worker.group_gone = True
            break
        if time.monotonic() > until:
            break
        time.sleep(0.1)
    worker.left_after_cleanup = _with_home(worker.home)


@pytest.fixture(scope="module")
def kill_runs(request, tmp_path_factory, gsm8k_test) -> KillRuns:
    base = tmp_path_factory.mktemp("kill-points")
    train = gsm8k_test.parent / "train.jsonl"
    recipes = {name: _recipe(name, train) for name in RECIPES}
    template = base / "prefect-home-template"
    template.mkdir()
    with (base / "migrate.log").open("wb") as out:  # one migrated database for every worker's home ...
        migrate = subprocess.Popen([sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"],
                                   env=_env(template), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        request.getfixturevalue("prefect_server")  # ... while this session's server starts (the runs below need it)
        migrate.wait(timeout=180)
    finally:
        if migrate.poll() is None:
            migrate.kill()
            migrate.wait()
    assert migrate.returncode == 0, (base / "migrate.log").read_text()
    workers: dict[str, Worker] = {}
    deadline = time.monotonic() + WORKER_TIMEOUT
    try:
        for point in POINTS:
            workers[point.id] = _start(point, recipes[point.recipe], base, template)
        references = {}
        for name, recipe in recipes.items():  # meanwhile, the uninterrupted runs
            start = time.monotonic()
            result, calls = _run(recipe, base / f"reference-{name}" / "store")
            assert result["version"] == "v0001" and result["created"]
            references[name] = Reference(calls, version_hash(Path(result["path"])), time.monotonic() - start)
    finally:
        for worker in workers.values():
            _reap(worker, deadline)
    return KillRuns(recipes, references, workers)


def test_the_kill_points_cover_every_kind_of_engine_call_and_every_commit(kill_runs):
    killed = {p.kill.get("purpose", "commit") for p in POINTS}
    made = {c.purpose for ref in kill_runs.references.values() for c in ref.calls}
    assert made | {"commit"} <= killed and len(POINTS) >= 10
    assert {kill_runs.recipes[p.recipe]["flow"] for p in POINTS if p.kill.get("commit")} == {"preference", "process"}
    pref = [c.purpose for c in kill_runs.references["pref"].calls]
    assert pref.count("generate") == 3  # three chunks: the first and the second are killed
    omega = kill_runs.references["omega"].calls
    k = _killed_call(next(p for p in POINTS if p.id == "omegaprm-mid-search"), omega)
    assert omega[k].purpose == "rollout" and omega[k].checkpoints >= 1
    assert any(c.purpose == "rollout" for c in omega[:k])  # a round of the search finished before the kill


@pytest.mark.parametrize("point", POINTS, ids=[p.id for p in POINTS])
def test_kill_9_then_rerun_publishes_the_same_version_resending_only_the_call_in_flight(point, kill_runs, capsys):
    worker, ref = kill_runs.workers[point.id], kill_runs.references[point.recipe]
    recipe, store = kill_runs.recipes[point.recipe], worker.store
    log = worker.log.read_text(errors="replace")

    # It died by SIGKILL, where it was meant to, with a Prefect server of its own.
    assert not worker.timed_out and worker.proc.returncode == -signal.SIGKILL, log[-3000:]
    assert "Starting temporary server" in log, log[-3000:]
    marker = json.loads((store / "kill-point.json").read_text())
    k = _killed_call(point, ref.calls)
    if point.kill.get("commit"):
        assert marker["commit"] and Path(marker["target"]).name == "v0001"
    else:
        assert (marker["purpose"], tuple(marker["ids"])) == (ref.calls[k].purpose, ref.calls[k].ids)

    # (c) Nothing left behind: its server was running when it died, orphaned; the group kill took it.
    servers = [pid for pid, cmd in marker["children"] if "uvicorn" in cmd and "prefect.server" in cmd]
    assert len(servers) == 1, marker["children"]
    assert worker.group_gone, (worker.group_at_exit, _in_group(worker.proc.pid))
    with pytest.raises(ProcessLookupError):
        os.killpg(worker.proc.pid, 0)
    assert worker.left_after_cleanup == [] and _with_home(worker.home) == []

    # (d) No half-written version: no version at all, only (at commit) the staging folder it had written.
    dataset = store / recipe["dataset"]
    assert not list(dataset.glob("v*")) and version_names(store, recipe["dataset"]) == []
    staging = list(dataset.glob(".staging-*"))
    if point.kill.get("commit"):
        assert [str(s) for s in staging] == [marker["staging"]]
        assert MANIFEST in marker["staged"] and any(f.endswith(".parquet") for f in marker["staged"])
    else:
        assert staging == []

    # The rerun, in this process.
    result, calls = _run(recipe, store)

    # (a) Exactly the uninterrupted run's tables.
    assert result["version"] == "v0001" and result["created"]
    assert version_hash(Path(result["path"])) == ref.hash
    # (b) The call in flight again, and what came after it; nothing the killed run had finished.
    sent, bound = sum(len(c.ids) for c in calls), sum(len(c.ids) for c in ref.calls[k:])
    in_flight = ("at commit, after all of them" if k == len(ref.calls)
                 else f"in call #{k + 1} ({ref.calls[k].purpose}, {len(ref.calls[k].ids)} requests)")
    with capsys.disabled():
        print(f"\n{point.id}: the uninterrupted run made {len(ref.calls)} calls, "
              f"{sum(len(c.ids) for c in ref.calls)} requests; killed {in_flight}; "
              f"rerun sent {sent} requests in {len(calls)} calls, bound {bound}")
    assert sent <= bound
    assert [(c.purpose, c.ids) for c in calls] == [(c.purpose, c.ids) for c in ref.calls[k:]]
    # (d) Every version folder is whole: exactly v0001, with its manifest; the killed writer's staging
    # folder (if any) is no version and no query sees its rows.
    assert sorted(p.name for p in dataset.glob("v*")) == ["v0001"] == version_names(store, recipe["dataset"])
    assert all((p / MANIFEST).is_file() for p in store.glob("*/v*"))
    samples = json.loads((dataset / "v0001" / MANIFEST).read_text())["files"]["data/samples/train-00000-of-00001.parquet"]
    assert run_query(store, "select version, count(*) from samples group by all").rows() == [("v0001", samples["rows"])]
