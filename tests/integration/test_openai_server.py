"""OpenAIEngine against a real `vllm.entrypoints.openai.api_server` on 127.0.0.1 serving SmolLM2-135M."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

from prefmill.config import EngineConfig, validate_config
from prefmill.engines.base import GenRequest, Sampling
from prefmill.engines.openai import OpenAIEngine
from prefmill.engines.serve import start_vllm_server
from prefmill.errors import EngineError
from prefmill.models import prepare_default_model

pytestmark = pytest.mark.integration


def _live_members(pgid: int) -> list[int]:
    """Processes of the group that are still running (zombies waiting for a reaper are dead)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            live.append(int(stat.parent.name))
    return live


@pytest.fixture(scope="module")
def server():
    server = start_vllm_server(str(prepare_default_model()))
    yield server
    server.stop()
    assert server.process.poll() is not None
    assert _live_members(server.process.pid) == []


@pytest.fixture(scope="module")
def engine(server):
    return OpenAIEngine(server.base_url, server.model, max_concurrency=8)


def _ask(request_id: str, question: str, *, seed: int, n: int = 2) -> GenRequest:
    return GenRequest(
        request_id,
        messages=({"role": "user", "content": question},),
        sampling=Sampling(n=n, temperature=0.8, max_tokens=24, seed=seed),
    )


def test_seeded_chat_batch_gives_n_completions_with_logprobs(engine):
    questions = ["What is 2 + 3?", "Name a primary colour.", "What is the capital of Italy?"]

    results = engine.generate([_ask(f"q{i}", q, seed=100 + i) for i, q in enumerate(questions)])

    assert [r.request_id for r in results] == ["q0", "q1", "q2"]
    for result in results:
        assert result.error is None and result.prompt_tokens > 0
        assert [c.index for c in result.completions] == [0, 1]
        for c in result.completions:
            assert c.text.strip() and 0 < c.num_tokens <= 24
            assert c.mean_logprob is not None and c.mean_logprob <= 0
            assert c.finish_reason in {"stop", "length"}


def test_same_seed_gives_identical_text(engine):
    request = _ask("same", "Write one sentence about the sea.", seed=7)

    first, second = engine.generate([request]), engine.generate([request])

    assert [c.text for c in first[0].completions] == [c.text for c in second[0].completions]
    assert first[0].completions[0].text != ""


def test_prefix_is_continued_raw(engine):
    request = GenRequest("prefix", prefix="The capital of France is", sampling=Sampling(max_tokens=8, seed=3))

    [result] = engine.generate([request])

    assert result.error is None
    [c] = result.completions
    assert c.text and c.num_tokens > 0 and c.mean_logprob is not None


def test_preference_recipe_runs_through_the_openai_engine(tmp_path, server, gsm8k_test, prefect_server, monkeypatch, caplog):
    """The recipe from YAML keys alone: `engine.kind: openai`, judging through the same server."""
    from prefmill.engines import engine_for
    from prefmill.flows.preference import preference

    recipe = validate_config(
        {
            "dataset": "openai-flow",
            "source": {"path": str(gsm8k_test), "limit": 4},
            "engine": {"kind": "openai", "base_url": server.base_url, "model": server.model,
                       "api_key_env": "PREFMILL_TEST_KEY"},
            "generate": {"n": 2, "max_tokens": 64},
            "judge": {"pointwise": True, "pairwise": True, "max_tokens": 96},
            "filters": {"require_swap_consistent": False},
        }
    ).model_dump(mode="json")
    monkeypatch.setenv("PREFMILL_TEST_KEY", "sk-never-print-me-42")
    engine = engine_for(EngineConfig.model_validate(recipe["engine"]))

    result = preference(config=recipe, store=str(tmp_path))

    assert result["version"] == "v0001"
    version = tmp_path / "openai-flow" / "v0001"
    samples = pl.read_parquet(version / "data" / "samples" / "train-00000-of-00001.parquet")
    assert samples.height == 8
    assert samples["engine"].unique().to_list() == [engine.fingerprint]
    assert samples["error"].null_count() == 8 and (samples["num_tokens"] > 0).all()
    # Guided decoding went through the server too: the judge's scores parse.
    assert samples["judge_score"].drop_nulls().len() >= 4
    manifest = json.loads((version / "manifest.json").read_text())
    assert manifest["engine"] == engine.fingerprint
    assert manifest["stats"]["votes"]["prompts"] == 4
    # The key reached the client but nothing written or logged.
    assert all(b"sk-never-print-me-42" not in f.read_bytes() for f in tmp_path.rglob("*") if f.is_file())
    assert "sk-never-print-me-42" not in caplog.text and "sk-never-print-me-42" not in repr(engine)


def test_server_that_cannot_start_raises_with_its_log(tmp_path):
    with pytest.raises(EngineError) as info:
        start_vllm_server(str(tmp_path / "no-such-model"), startup_timeout=120)

    message = info.value.message
    assert "exited with code" in message and "no-such-model" in message
    assert len(message.splitlines()) > 5  # the tail of the server's own log
    log = Path(message.split("last lines of ", 1)[1].split(":\n", 1)[0])
    assert log.is_file()
    os.unlink(log)
