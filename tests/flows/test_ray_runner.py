"""`runner: ray` on a real two-node Ray cluster (tests/conftest.py `ray_cluster`): the recipes' engine calls
go to replica actors, and the published dataset is the one the local runner publishes, byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from prefmill.config import validate_config
from prefmill.engines import engine_for
from prefmill.flows.preference import preference
from prefmill.runner_config import RunnerConfig
from tests.flows.test_golden import GOLDEN, run_case, version_hash
from tests.flows import test_golden

pytestmark = pytest.mark.usefixtures("prefect_server")
ROOT = Path(__file__).resolve().parents[2]


def _ray(address: str, **extra) -> dict:
    return {"kind": "ray", "address": address, "replicas": 2, "batch_size": 8} | extra


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


@pytest.mark.parametrize("name", ["preference-rise", "process-omegaprm", "process-mc-consensus"])
def test_ray_runner_publishes_the_local_runners_dataset(name, ray_cluster, tmp_path, gsm8k_test, monkeypatch):
    train = gsm8k_test.parent / "train.jsonl"
    local = run_case(name, tmp_path / "local", train)
    monkeypatch.setitem(test_golden._BASE, "runner", _ray(ray_cluster))
    distributed = run_case(name, tmp_path / "ray", train)
    assert version_hash(distributed) == GOLDEN[name]
    assert _manifest(distributed)["content_hash"] == _manifest(local)["content_hash"]
    assert _manifest(distributed)["runner"]["kind"] == "ray" and "runner" not in _manifest(distributed)["config"]


def test_every_replica_serves_batches_of_every_kind_of_call(ray_cluster, tmp_path, gsm8k_test, monkeypatch):
    monkeypatch.setitem(test_golden._BASE, "runner", _ray(ray_cluster, batch_size=4))
    run_case("preference-rise", tmp_path / "store", gsm8k_test.parent / "train.jsonl")
    spec = test_golden._BASE
    cfg = validate_config({"dataset": "x", "source": {"path": str(gsm8k_test)}, **spec})
    pools = [e for e in _live_pools() if e.runner == cfg.runner]
    assert pools, "the run built no Ray pool"
    stats = [s for pool in pools for s in pool.replica_stats()]
    assert len({s["pid"] for s in stats}) >= 2 and all(s["calls"] > 0 for s in stats)
    assert all(pid != os.getpid() for pid in (s["pid"] for s in stats))
    purposes = {p for s in stats for p in s["requests"]}
    assert {"generate", "judge_pointwise", "judge_pairwise", "rise_edit"} <= purposes


def _live_pools():
    from prefmill.engines import _ENGINES
    from prefmill.engines.ray_pool import RayEnginePool

    return [e for e in _ENGINES.values() if isinstance(e, RayEnginePool)]


def test_a_replica_killed_between_calls_is_restarted_and_loses_nothing(ray_cluster, gsm8k_test):
    import ray

    from prefmill.engine_config import EngineConfig
    from prefmill.engines.base import GenRequest, Sampling

    engine_cfg = EngineConfig(kind="scripted")
    pool = engine_for(engine_cfg, runner=RunnerConfig(**_ray(ray_cluster, batch_size=2)), references={})
    local = engine_for(engine_cfg, references={})
    requests = [GenRequest(f"r{i}", messages=({"role": "user", "content": f"What is {i} + {i}?"},),
                           sampling=Sampling(n=2, seed=i)) for i in range(9)]
    assert pool.generate(requests) == local.generate(requests)
    ray.kill(pool.replicas[0], no_restart=False)
    assert pool.generate(requests) == local.generate(requests)


def test_a_killed_driver_resumes_after_its_last_finished_chunk(ray_cluster, tmp_path, gsm8k_test):
    from prefect.settings import PREFECT_API_URL

    recipe = validate_config({
        "dataset": "ray-kill", "source": {"path": str(gsm8k_test), "limit": 12},
        "engine": {"kind": "scripted", "latency": 0.4}, "generate": {"n": 2, "chunk_size": 2, "seed": 3},
        "runner": _ray(ray_cluster, batch_size=1),
    }).model_dump(mode="json")
    store = tmp_path / "store"
    env = os.environ | {"PREFECT_API_URL": PREFECT_API_URL.value()}
    proc = subprocess.run([sys.executable, "-m", "tests.flows.ray_kill_worker", json.dumps(recipe), str(store)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == -9, proc.stderr[-2000:]
    finished = len(list(store.glob(".cache/*/generate/*.parquet")))
    assert 2 <= finished < 6 and not list(store.glob("ray-kill/v*"))

    result = preference(config=recipe, store=str(store))
    pool = next(p for p in _live_pools() if p.runner.batch_size == 1)
    sent = sum(s["requests"].get("generate", 0) for s in pool.replica_stats())
    assert sent == 12 - 2 * finished  # only the prompts of unfinished chunks reach the replicas again

    uninterrupted = preference(config=recipe, store=str(tmp_path / "fresh"))
    assert _manifest(Path(result["path"]))["content_hash"] == _manifest(Path(uninterrupted["path"]))["content_hash"]


def _requests(count: int):
    from prefmill.engines.base import GenRequest, Sampling

    return [GenRequest(f"r{i}", messages=({"role": "user", "content": f"What is {i} + {i}?"},),
                       sampling=Sampling(n=2, seed=i)) for i in range(count)]


def test_a_replica_dead_for_good_hands_its_batches_to_the_others(ray_cluster):
    import ray

    from prefmill.engine_config import EngineConfig

    cfg = EngineConfig(kind="scripted")
    pool = engine_for(cfg, runner=RunnerConfig(**_ray(ray_cluster, batch_size=2)), references={})
    requests = _requests(12)
    ray.kill(pool.replicas[0], no_restart=True)
    assert pool.generate(requests) == engine_for(cfg, references={}).generate(requests)
    ray.kill(pool.replicas[1], no_restart=True)
    assert {r.error for r in pool.generate(requests)} == {"ray runner: no live replica"}


def test_a_small_call_is_spread_over_every_replica(ray_cluster):
    from prefmill.engine_config import EngineConfig

    pool = engine_for(EngineConfig(kind="scripted"), runner=RunnerConfig(**_ray(ray_cluster, batch_size=64)), references={})
    pool.generate(_requests(10))  # one chunk smaller than batch_size: still one batch a replica
    assert [s["calls"] for s in pool.replica_stats()] == [1, 1]


@pytest.mark.parametrize(("runner", "message"), [
    ({"replicas": 4}, "replicas apply to kind: ray only"),
    ({"kind": "ray", "address": "user:secret@head:6379"}, "without user@"),
    ({"kind": "ray", "address": "ray://head:10001?token=abc"}, "without user@"),
])
def test_runner_settings_are_checked(runner, message, gsm8k_test):
    from prefmill.errors import ConfigError

    with pytest.raises(ConfigError, match=message) as info:
        validate_config({"dataset": "x", "source": {"path": str(gsm8k_test)}, "runner": runner})
    assert "secret" not in str(info.value) and "abc" not in str(info.value)


def test_a_stuck_batch_drops_its_replica_instead_of_hanging_the_run(ray_cluster):
    import time

    from prefmill.engine_config import EngineConfig

    slow = EngineConfig(kind="scripted", latency=30)
    pool = engine_for(slow, runner=RunnerConfig(**_ray(ray_cluster, batch_timeout=1)), references={})
    start = time.monotonic()
    results = pool.generate(_requests(4))
    assert time.monotonic() - start < 15
    assert {r.error for r in results} == {"ray runner: no live replica"} and pool.dead == {0, 1}


def test_an_address_nobody_listens_on_is_one_error_at_once(tmp_path):
    import socket
    import time

    from typer.testing import CliRunner

    from prefmill.cli import app

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    result = CliRunner().invoke(app, ["run", str(ROOT / "configs" / "demo.yaml"), "--set", "engine.kind=scripted",
                                      "--set", "runner.kind=ray", "--set", f"runner.address=127.0.0.1:{port}",
                                      "--store", str(tmp_path / "store")])
    assert result.exit_code == 2 and time.monotonic() - start < 30
    assert "runner.address: no Ray cluster answers there" in result.output and "Traceback" not in result.output
    assert str(port) not in result.output and not (tmp_path / "store").exists()


def test_replicas_the_cluster_cannot_place_are_one_error_not_a_hang(ray_cluster, caplog):
    import time

    from prefmill.engine_config import EngineConfig
    from prefmill.errors import EngineError

    start = time.monotonic()
    with pytest.raises(EngineError, match="did not start within 2 s") as info:
        engine_for(EngineConfig(kind="scripted"), runner=RunnerConfig(**_ray(ray_cluster, num_cpus=64, start_timeout=2)),
                   references={})
    assert time.monotonic() - start < 20 and "CPUs/GPUs" in (info.value.hint or "")
    assert "not started after 2 s; each needs 64 CPU" in caplog.text
