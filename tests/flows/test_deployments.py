"""Scheduled deployments on a real Prefect server, run by a real process worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import yaml
from prefect.client.orchestration import get_client
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


def test_a_worker_runs_a_scheduled_deployment_and_it_publishes_a_version(tmp_path, gsm8k_test):
    tag = uuid.uuid4().hex[:8]
    recipe, store, project_file = tmp_path / "recipe.yaml", tmp_path / "store", tmp_path / "prefect.yaml"
    recipe.write_text(yaml.safe_dump({
        "dataset": "deployed", "source": {"path": str(gsm8k_test.parent / "train.jsonl"), "limit": 4},
        "engine": {"kind": "scripted", "p_error": 0.3}, "generate": {"n": 2},
    }))
    pool, limit = f"pool-{tag}", f"gpu-{tag}"
    project_file.write_text(yaml.safe_dump({
        "prefmill": {"gpu_limit": {"name": limit, "slots": 1}},
        "deployments": [{"name": f"scripted-{tag}", "entrypoint": "flows/recipe.py:run_recipe",
                         "parameters": {"recipe": str(recipe), "store": str(store)}, "work_pool": {"name": pool},
                         "schedules": [{"cron": "0 3 * * *"}], "concurrency_limit": 1}],
    }))
    (name,) = apply(project_file, project=ROOT)
    run = run_deployment(name, timeout=0)  # scheduled now; the worker picks it up

    env = os.environ | {"PREFECT_API_URL": PREFECT_API_URL.value(), "PREFMILL_GPU_LIMIT": limit}
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--run-once"],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            worker.wait(timeout=300)
        finally:
            if worker.poll() is None:
                worker.kill()
    with get_client(sync_client=True) as client:
        for _ in range(60):
            state = client.read_flow_run(run.id).state
            if state.is_final():
                break
            time.sleep(1)
    assert state.is_completed(), log.read_text()[-3000:]
    manifest = json.loads((store / "deployed" / "v0001" / "manifest.json").read_text())
    assert manifest["stats"]["samples"]["samples"] == 8
