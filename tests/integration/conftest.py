"""The real model (SmolLM2-135M-Instruct through vLLM on this machine), loaded once per session."""

from __future__ import annotations

import pytest

from prefmill.config import load_config
from tests.conftest import ROOT

DEMO = ROOT / "configs" / "demo.yaml"


@pytest.fixture(scope="session")
def demo_config():
    return load_config(DEMO)


@pytest.fixture(scope="session")
def real_engine(demo_config):
    """The demo recipe's engine; `engine_for` keeps it, so every flow in the session reuses it."""
    from prefmill.engines import engine_for

    return engine_for(demo_config.engine)
