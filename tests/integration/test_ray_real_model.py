"""The demo recipe on the real model through one vLLM replica on the test's Ray cluster publishes the
dataset the local runner publishes: same content hash, every engine call served by the replica."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from prefmill.cli import app
from tests.integration.conftest import DEMO

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]


def _run(store, *overrides: str) -> dict:
    result = CliRunner().invoke(app, ["run", str(DEMO), "--store", str(store), *overrides])
    assert result.exit_code == 0, result.output
    return json.loads((store / "gsm8k-demo" / "v0001" / "manifest.json").read_text())


def test_demo_on_one_ray_vllm_replica_matches_the_local_run(tmp_path, real_engine, ray_cluster):
    from prefmill.engines import _ENGINES
    from prefmill.engines.ray_pool import RayEnginePool

    local = _run(tmp_path / "local")
    calls_before = real_engine.calls
    distributed = _run(tmp_path / "ray", "--set", "runner.kind=ray", "--set", f"runner.address={ray_cluster}",
                       "--set", "runner.num_cpus=2", "--set", "runner.batch_size=4096")

    assert real_engine.calls == calls_before, "the ray run used the local engine"
    [pool] = [e for e in _ENGINES.values() if isinstance(e, RayEnginePool)]
    [replica] = pool.replica_stats()
    assert replica["pid"] != os.getpid() and replica["calls"] >= 4
    assert distributed["engine"] == local["engine"] == real_engine.fingerprint
    assert distributed["content_hash"] == local["content_hash"]
    assert distributed["runner"]["kind"] == "ray"
    pool.close()  # its model's memory back before the next test
