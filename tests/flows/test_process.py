"""The process-supervision flow on the scripted chain policy: real Prefect, Parquet, DuckDB, datasets."""

from __future__ import annotations

import datasets
import pytest

from prefmill.config import validate_config
from prefmill.flows.process import process
from prefmill.query import run_query

pytestmark = pytest.mark.usefixtures("prefect_server")


def _recipe(train, **process) -> dict:
    return validate_config(
        {
            "dataset": "steps-a",
            "flow": "process",
            "source": {"path": str(train), "limit": 12},
            "engine": {"kind": "scripted", "p_error": 0.5},
            "generate": {"n": 2},
            "process": {"method": "mc", "rollouts": 8} | process,
        }
    ).model_dump(mode="json")


def test_mc_labels_publish_trl_stepwise_data_and_reuse_rollouts(tmp_path, gsm8k_test):
    train = gsm8k_test.parent / "train.jsonl"
    store = tmp_path / "store"

    first = process(config=_recipe(train), store=str(store))

    steps = first["stats"]["steps"]
    assert first["version"] == "v0001" and steps["published"] == steps["chains"] == 24
    assert steps["rollout_cache"]["hits"] == 0 and steps["rollout_cache"]["misses"] > 0
    files = store / "steps-a" / "v0001" / "data" / "steps"
    ds = datasets.load_dataset("parquet", data_files=str(files / "*.parquet"), split="train")
    # TRL's stepwise-supervision format: a prompt, its steps, one bool label a step.
    assert {"prompt", "completions", "labels"} <= set(ds.column_names)
    assert str(ds.features["labels"].feature.dtype) == "bool"
    for row in ds:
        assert isinstance(row["prompt"], str) and len(row["completions"]) == len(row["labels"]) > 0
        first_error = row["first_error_step"]
        if first_error is None:
            assert all(row["labels"])
        else:  # steps before the first error can still reach the answer; that step cannot
            assert all(row["labels"][:first_error]) and not row["labels"][first_error]
    by_method = run_query(store, "select method, count(*) from steps group by all").rows()
    assert by_method == [("mc", 24)]

    # Another labelling config re-labels, but every rollout it needs is already on disk.
    second = process(config=_recipe(train, max_steps=12), store=str(store))

    cache = second["stats"]["steps"]["rollout_cache"]
    # (the first run's misses also counted its 24 fresh samples, which Prefect's cache serves now)
    assert cache["misses"] == 0 and cache["hits"] == steps["rollout_cache"]["misses"] - 24
    assert second["version"] == "v0002"  # the recipe changed, so the version does too


def test_omegaprm_with_consensus_judge_and_step_pairs(tmp_path, gsm8k_test):
    train = gsm8k_test.parent / "train.jsonl"
    store = tmp_path / "store"
    recipe = _recipe(train, method="omegaprm", consensus=True) | {"dataset": "steps-b"}

    result = process(config=validate_config(recipe).model_dump(mode="json"), store=str(store))

    stats = result["stats"]
    agreed = stats["consensus"]
    assert agreed["chains"] == 24 and 0 < agreed["kept"] <= 24
    assert agreed["kept"] + sum(v for k, v in agreed.items() if k.startswith("dropped_")) == agreed["chains"]
    assert stats["steps"]["published"] <= agreed["kept"]
    rows = run_query(store, "select method, count(*) as n from steps group by all")
    assert rows.rows() == [("omegaprm", stats["steps"]["published"])]
    pairs = run_query(store, "select prompt, chosen, rejected, chosen_value, rejected_value, kind from step_pairs")
    assert pairs.height == stats["step_pairs"]["pairs"] > 0
    for row in pairs.iter_rows(named=True):
        assert row["chosen_value"] > row["rejected_value"] and row["kind"] in ("first_error", "contrast")
        assert row["chosen"][0]["role"] == row["rejected"][0]["role"] == "assistant"


def test_kill_9_during_omegaprm_resumes_without_searching_finished_questions(tmp_path, gsm8k_test):
    import json
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    train = gsm8k_test.parent / "train.jsonl"
    store = tmp_path / "store"
    recipe = _recipe(train, method="omegaprm") | {"dataset": "steps-kill"}
    env = os.environ | {"PREFECT_HOME": str(tmp_path / "prefect-home")}
    env["PREFECT_MEMO_STORE_PATH"] = str(tmp_path / "prefect-home" / "memo_store.toml")
    log = tmp_path / "worker.log"
    with log.open("wb") as out:  # a file, not a pipe: the worker's orphaned Prefect server keeps pipes open
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.flows.kill_worker", json.dumps(recipe), str(store)],
            cwd=ROOT, env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT,
        )
        try:
            worker.wait(timeout=240)
        finally:
            try:
                os.killpg(worker.pid, signal.SIGKILL)  # the worker's own Prefect server, orphaned by the kill
            except ProcessLookupError:
                pass
    assert worker.returncode == -signal.SIGKILL, log.read_text()[-2000:]
    (folder,) = store.glob(".cache/*/omegaprm/*-checkpoints")
    finished = {f.name: f.stat().st_mtime_ns for f in folder.glob("*.json")}
    assert 0 < len(finished) < 12
    assert not list(store.glob("steps-kill/v*"))  # nothing half-published

    result = process(config=recipe, store=str(store))

    after = {f.name: f.stat().st_mtime_ns for f in folder.glob("*.json")}
    assert len(after) == 12 and result["version"] == "v0001"
    assert all(after[name] == mtime for name, mtime in finished.items())  # never searched again
    assert result["stats"]["steps"]["published"] == 24


def test_balance_runs_after_consensus_so_the_published_steps_stay_balanced(tmp_path, gsm8k_test):
    train = gsm8k_test.parent / "train.jsonl"
    recipe = _recipe(train, method="omegaprm", consensus=True, balance=True) | {"dataset": "steps-balanced"}
    result = process(config=recipe, store=str(tmp_path / "store"))
    steps = result["stats"]["steps"]
    assert steps["published"] > 0 and steps["chains_with_error"] * 2 == steps["published"]
    assert result["stats"]["consensus"]["chains"] >= steps["published"]
