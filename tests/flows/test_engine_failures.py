"""Engine failures are never cached for good: a run made while the server was down publishes its
failed samples (as `generate.max_failed_share` allows), and the rerun after the server is back sends
those requests again and publishes a complete version."""

from __future__ import annotations

import pytest

from prefmill.config import validate_config
from prefmill.engines import engine_for, register_engine
from prefmill.engines.base import GenResult
from prefmill.flows.preference import preference
from prefmill.sources import load_prompts

pytestmark = pytest.mark.usefixtures("prefect_server")


class Flaky:
    """Fails every request while `down`, as a server that is not up yet."""

    def __init__(self, inner) -> None:
        self.inner, self.fingerprint, self.down, self.requests = inner, inner.fingerprint, True, 0

    def generate(self, requests):
        self.requests += len(requests)
        if self.down:
            return [GenResult(r.request_id, error="APIConnectionError: connection refused") for r in requests]
        return self.inner.generate(requests)


def test_a_rerun_after_the_server_is_back_retries_the_failed_requests(tmp_path, gsm8k_test):
    recipe = validate_config({
        "dataset": "flaky", "source": {"path": str(gsm8k_test.parent / "train.jsonl"), "limit": 4},
        "engine": {"kind": "scripted", "p_error": 0.3}, "generate": {"n": 2, "max_failed_share": 1.0},
        "judge": {"pointwise": True, "max_parse_fail": 1.0},
    })
    prompts = load_prompts(recipe.source)
    engine = Flaky(engine_for(recipe.engine, references=dict(zip(prompts["question"], prompts["reference"]))))
    register_engine(recipe.engine, engine)
    config = recipe.model_dump(mode="json")
    store = tmp_path / "store"

    down = preference(config=config, store=str(store))
    assert down["stats"]["samples"]["engine_failures"] == 8

    engine.down = False
    sent = engine.requests
    back = preference(config=config, store=str(store))

    assert engine.requests > sent  # the failed generations were asked again, not served from Prefect's cache
    assert back["created"] and back["version"] == "v0002"
    assert back["stats"]["samples"]["engine_failures"] == 0 and back["stats"]["samples"]["judge"]["judged"] == 8

    complete = engine.requests
    again = preference(config=config, store=str(store))  # and a complete result is reused as before
    assert engine.requests == complete and not again["created"]
