"""One Prefect server for the whole session (starting one costs ~10 s), in a temporary home."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="prefmill-test-prefect-")
os.environ["PREFECT_HOME"] = _HOME
os.environ["PREFECT_MEMO_STORE_PATH"] = str(Path(_HOME) / "memo_store.toml")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["HF_HUB_OFFLINE"] = "1"  # tests never download
os.environ["HF_DATASETS_OFFLINE"] = "1"

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GSM8K = ROOT.parent / "shared" / "data" / "gsm8k"


@pytest.fixture(scope="session")
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def gsm8k_test() -> Path:
    path = GSM8K / "test.jsonl"
    if not path.is_file():
        pytest.fail(f"{path} is missing: shared/data must sit beside the checkout")
    return path


@pytest.fixture(autouse=True)
def _own_engine_registry():
    """Engines a test registers stay with that test; the session's real engines stay registered."""
    from prefmill.engines import _ENGINES

    saved = dict(_ENGINES)
    yield
    _ENGINES.clear()
    _ENGINES.update(saved)


@pytest.fixture(scope="session")
def ray_cluster():
    """A real two-node Ray cluster on this machine (a head and one worker node, each its own raylet and
    object store), joined by this process; its address is what a recipe's `runner.address` names."""
    import ray
    from ray.cluster_utils import Cluster

    nodes = {"object_store_memory": 200 * 1024**2}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False, **nodes})
    cluster.add_node(num_cpus=2, **nodes)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    try:
        yield cluster.address
    finally:
        ray.shutdown()
        cluster.shutdown()
