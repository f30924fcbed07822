"""Scheduled deployments on a real Prefect server, run by a real process worker."""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterTimestamp
from prefect.deployments import run_deployment
from prefect.settings import PREFECT_API_URL

from prefmill.errors import ConfigError
from prefmill.flows.deploy import apply, read_project
from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_the_shipped_deployments_apply_with_their_pool_limit_and_schedules():
    names = apply(ROOT / "deployments" / "prefect.yaml", project=ROOT)
    again = apply(ROOT / "deployments" / "prefect.yaml", project=ROOT)  # idempotent
    assert names == again == ["recipe/gsm8k-dpo-nightly", "recipe/gsm8k-prm-weekly", "recipe/demo-hourly"]
    with get_client(sync_client=True) as client:
        try:
            nightly = client.read_deployment_by_name("recipe/gsm8k-dpo-nightly")
            assert nightly.work_pool_name == "prefmill" and nightly.parameters["recipe"] == "configs/gsm8k-dpo.yaml"
            assert [s.schedule.cron for s in nightly.schedules] == ["0 2 * * *"]
            assert nightly.global_concurrency_limit is not None and nightly.global_concurrency_limit.limit == 1
            demo = client.read_deployment_by_name("recipe/demo-hourly")
            assert [s.active for s in demo.schedules] == [False]
            assert client.read_work_pool("prefmill").type == "process"
            assert client.read_global_concurrency_limit_by_name("prefmill-gpu").limit == 1
        finally:  # other tests' flows must not queue for the shipped GPU slot
            client.delete_global_concurrency_limit_by_name("prefmill-gpu")


def test_a_bad_project_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "prefect.yaml"
    bad.write_text("deployments:\n  - name: x\n    entrypoint: flows/recipe.py:run_recipe\n")
    with pytest.raises(ConfigError, match=r"deployments\[0\] needs name, entrypoint and work_pool.name"):
        read_project(bad)
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="cannot read"):
        read_project(bad)


def _held(logs) -> list[tuple[float, float, int]]:
    """(start, end, process) of every time a run held the GPU slot, from its log lines."""
    return [(float(m.group(1)), float(m.group(2)), int(m.group(3))) for log in logs
            if (m := re.search(r"slot held from ([0-9.]+) to ([0-9.]+) by process (\d+)", log.message))]


def test_a_worker_runs_two_deployments_at_once_and_the_gpu_slot_is_never_held_twice(tmp_path, gsm8k_test):
    tag = uuid.uuid4().hex[:8]
    store, project_file = tmp_path / "store", tmp_path / "prefect.yaml"
    deployments = []
    for name in ("first", "second"):
        recipe = tmp_path / f"{name}.yaml"
        recipe.write_text(yaml.safe_dump({
            "dataset": f"deployed-{name}", "source": {"path": str(gsm8k_test.parent / "train.jsonl"), "limit": 8},
            "engine": {"kind": "scripted", "p_error": 0.3, "latency": 1.0}, "generate": {"n": 2, "chunk_size": 1},
            "judge": {"pointwise": True},
        }))
        deployments.append({"name": f"{name}-{tag}", "entrypoint": "flows/recipe.py:run_recipe",
                            "parameters": {"recipe": str(recipe), "store": str(store)},
                            "work_pool": {"name": f"pool-{tag}"}, "schedules": [{"cron": "0 3 * * *"}],
                            "concurrency_limit": 1})
    limit = f"gpu-{tag}"
    project_file.write_text(yaml.safe_dump({"prefmill": {"gpu_limit": {"name": limit, "slots": 1}},
                                            "deployments": deployments}))
    names = apply(project_file, project=ROOT)
    started = datetime.datetime.now(datetime.timezone.utc)
    runs = [run_deployment(name, timeout=0) for name in names]  # both scheduled now

    env = os.environ | {"PREFECT_API_URL": PREFECT_API_URL.value(), "PREFMILL_GPU_LIMIT": limit}
    log = tmp_path / "worker.log"
    with log.open("wb") as out:  # the worker starts both runs, each in its own process, then exits
        worker = subprocess.Popen(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", f"pool-{tag}", "--run-once", "--limit", "2"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            worker.wait(timeout=300)
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)  # stop what the test started
    with get_client(sync_client=True) as client:
        for _ in range(90):
            states = [client.read_flow_run(r.id).state for r in runs]
            if all(s.is_final() for s in states):
                break
            time.sleep(1)
        assert all(s.is_completed() for s in states), log.read_text()[-3000:]
        logs, offset = [], 0
        while page := client.read_logs(LogFilter(timestamp=LogFilterTimestamp(after_=started)), limit=200, offset=offset):
            logs += [log for log in page if log.message.startswith(f"{limit} slot held")]
            offset += len(page)
    for name in ("first", "second"):
        manifest = json.loads((store / f"deployed-{name}" / "v0001" / "manifest.json").read_text())
        assert manifest["stats"]["samples"]["samples"] == 16
    held = sorted(_held(logs))  # (the test server's SQLite may drop a log line under load: not all are there)
    assert len({pid for *_, pid in held}) == 2 and all(end - start >= 1.0 for start, end, _ in held)
    assert all(end <= next_start for (_, end, _), (next_start, _, _) in zip(held, held[1:]))  # never two at once
