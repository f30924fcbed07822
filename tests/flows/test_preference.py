"""The preference flow on the scripted engine: a real Prefect run, real Parquet, real DuckDB."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from prefect.artifacts import Artifact

from prefmill.config import EngineConfig, validate_config
from prefmill.engines import register_engine
from prefmill.engines.scripted import ScriptedEngine, gsm8k_policy
from prefmill.errors import InputError
from prefmill.flows.preference import preference
from prefmill.query import run_query
from prefmill.sources import read_table

pytestmark = pytest.mark.usefixtures("prefect_server")


def _recipe(source: Path, *, dataset: str, p_error: float, limit: int = 12, chunk: int = 5) -> dict:
    return validate_config(
        {
            "dataset": dataset,
            "source": {"path": str(source), "limit": limit},
            "engine": {"kind": "scripted", "p_error": p_error},
            "generate": {"n": 4, "chunk_size": chunk},
        }
    ).model_dump(mode="json")


def _engine_for(recipe: dict, source: Path, *, p_error: float) -> ScriptedEngine:
    rows = read_table(source).head(recipe["source"]["limit"])
    engine = ScriptedEngine(gsm8k_policy(dict(zip(rows["question"], rows["answer"])), p_error=p_error))
    register_engine(EngineConfig.model_validate(recipe["engine"]), engine)
    return engine


def test_flow_publishes_version_and_rerun_is_cached(tmp_path, gsm8k_test):
    recipe = _recipe(gsm8k_test, dataset="flow-a", p_error=0.4)
    engine = _engine_for(recipe, gsm8k_test, p_error=0.4)
    store = tmp_path / "store"

    first = preference(config=recipe, store=str(store))

    assert first["version"] == "v0001" and first["created"]
    assert engine.calls == 3  # 12 prompts in chunks of 5: one engine call per chunk
    manifest = json.loads((store / "flow-a" / "v0001" / "manifest.json").read_text())
    assert manifest["files"]["data/samples/train-00000-of-00001.parquet"]["rows"] == 48
    assert manifest["engine"] == engine.fingerprint
    pairs = manifest["stats"]["pairs"]["pairs"]
    assert pairs + sum(manifest["stats"]["pairs"]["dropped"].values()) == 12
    rows = run_query(store, "select version, count(*) from pairs group by version").rows()
    assert rows == [("v0001", pairs)]
    stage_counts = Artifact.get("flow-a-stage-counts")
    assert stage_counts is not None and stage_counts.type == "table"
    table = json.loads(stage_counts.data) if isinstance(stage_counts.data, str) else stage_counts.data
    assert [row["stage"] for row in table] == ["load-prompts", "generate", "verify", "vote", "pairs"]
    assert [row["rows_out"] for row in table][:2] == [12, 48] and table[4]["rows_out"] == pairs

    second = preference(config=recipe, store=str(store))

    assert engine.calls == 3  # every stage came from the cache
    assert second["version"] == "v0001" and not second["created"]
    assert sorted(p.name for p in (store / "flow-a").iterdir()) == ["v0001"]

    shutil.rmtree(store / ".cache" / "flow-a" / "generate")  # a user freeing disk space
    third = preference(config=recipe, store=str(store))

    assert engine.calls == 3  # the lost chunks were rebuilt from the rollout cache, not a dangling ref
    shutil.rmtree(store / ".cache" / "flow-a" / "generate")
    shutil.rmtree(store / ".cache" / "rollouts")  # and with the samples gone too, they are generated again
    preference(config=recipe, store=str(store))
    assert engine.calls == 6
    assert third["version"] == "v0001" and not third["created"]


def test_crash_in_a_chunk_resumes_after_finished_chunks(tmp_path, gsm8k_test):
    recipe = _recipe(gsm8k_test, dataset="flow-b", p_error=0.3)
    healthy = _engine_for(recipe, gsm8k_test, p_error=0.3)

    class CrashOnSecondCall(ScriptedEngine):
        def generate(self, requests):
            if self.calls == 1:
                self.calls += 1
                raise KeyboardInterrupt("simulated kill during chunk 2")
            return super().generate(requests)

    crashing = CrashOnSecondCall(healthy.policy)
    crashing.fingerprint = healthy.fingerprint
    register_engine(EngineConfig.model_validate(recipe["engine"]), crashing)
    store = tmp_path / "store"
    with pytest.raises(BaseException):
        preference(config=recipe, store=str(store))
    assert not (store / "flow-b").exists() or not any(p.name.startswith("v") for p in (store / "flow-b").iterdir())

    register_engine(EngineConfig.model_validate(recipe["engine"]), healthy)
    result = preference(config=recipe, store=str(store))

    assert result["version"] == "v0001"
    assert healthy.requests_seen == 7  # chunk 1 (5 prompts) was checkpointed; chunks 2-3 ran


def test_bad_input_row_fails_with_file_row_field_and_no_version(tmp_path):
    source = tmp_path / "prompts.jsonl"
    source.write_text('{"question": "What is 1+1?", "answer": "2"}\n{"question": "", "answer": "3"}\n')
    recipe = _recipe(source, dataset="flow-c", p_error=0.0, limit=2)
    store = tmp_path / "store"

    with pytest.raises(InputError) as info:
        preference(config=recipe, store=str(store))

    assert str(source) in info.value.message and "row 2" in info.value.message and "'question'" in info.value.message
    assert not (store / "flow-c").exists()


def test_concurrent_runs_of_different_recipes_get_distinct_versions(tmp_path, gsm8k_test):
    store = tmp_path / "store"
    results = {}
    recipes = {p: _recipe(gsm8k_test, dataset="flow-d", p_error=p, limit=6) for p in (0.2, 0.6)}
    for p, recipe in recipes.items():
        _engine_for(recipe, gsm8k_test, p_error=p)

    def run(p):
        results[p] = preference(config=recipes[p], store=str(store))["version"]

    threads = [threading.Thread(target=run, args=(p,)) for p in recipes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == ["v0001", "v0002"]


def test_full_recipe_two_iterations_on_scripted_policy_and_judge(tmp_path, gsm8k_test):
    """Every stage on: decontamination, votes, both judges, all filters; then an anchored second
    iteration, by another model, whose judge CREAM checks against the first model's."""
    train = gsm8k_test.parent / "train.jsonl"
    base = {
        "dataset": "flow-full",
        "source": {"path": str(train), "limit": 30},
        "decontamination": {"enabled": True, "eval_files": [str(gsm8k_test)]},
        "engine": {"kind": "scripted", "p_error": 0.4},
        "generate": {"n": 4},
        "judge": {"pointwise": True, "pairwise": True, "samples": 3},
        "filters": {"scir_min_agreement": 0.67, "verifier_judge_agreement": True, "cream": "drop"},
        "pairs": {"strategy": "all_ranked", "min_margin": 0.3},
    }
    store = tmp_path / "store"

    first = preference(config=validate_config(base).model_dump(mode="json"), store=str(store))
    second_cfg = base | {"pairs": {"strategy": "anchored"}, "engine": {"kind": "scripted", "p_error": 0.2}}
    second = preference(config=validate_config(second_cfg).model_dump(mode="json"), store=str(store))

    p1, p2 = first["stats"]["pairs"], second["stats"]["pairs"]
    assert p1["pairs"] + sum(p1["dropped"].values()) == p1["candidates"]
    assert p1["pairs"] > 0 and set(p1["dropped"]) <= {"no_margin", "swap_inconsistent", "swap_unverified",
                                                     "scir_disagreement", "judge_contradicts_verifier"}
    assert first["stats"]["samples"]["judge"]["judged"] == first["stats"]["samples"]["samples"]
    assert p1["cream"]["note"].endswith("CREAM did nothing") and p2["cream"]["previous_version"] == "v0001"
    assert set(p2["scir"]["signals"]) == {"pointwise", "pairwise", "verifier"}
    pairs = run_query(store, "select version, strategy, count(rejected_version) as anchored, "
                             "count(cream_consistency) as tau from pairs group by all order by version").rows()
    assert pairs[0] == ("v0001", "all_ranked", 0, 0) and pairs[1][:3] == ("v0002", "anchored", p2["pairs"])
    assert 0 < pairs[1][3] <= p2["pairs"]  # prompts whose responses a judge ties throughout have no tau
    assert run_query(store, "select min(margin) from pairs where version = 'v0001'").item() >= 0.3
    versions = json.loads((store / "flow-full" / "v0002" / "manifest.json").read_text())
    assert versions["parent"] == "v0001"
    votes = run_query(store, "select count(*) from votes where version = 'v0001'").item()
    assert votes == first["stats"]["votes"]["prompts"]


def test_rise_pairs_join_the_version_with_error_type_and_edit_span(tmp_path, gsm8k_test):
    """RISE on the scripted engine: it edits a step (sometimes badly: admitting the error, changing
    nothing, rewriting the step), continues from the edit, and the kept edits become `rise` pairs."""
    base = {
        "dataset": "flow-rise",
        "source": {"path": str(gsm8k_test.parent / "train.jsonl"), "limit": 20},
        "engine": {"kind": "scripted", "p_error": 0.4},
        "generate": {"n": 4},
        "rise": {"enabled": True, "edits_per_solution": 2, "use_reference": True, "ratio": None},
    }
    store = tmp_path / "store"

    version = preference(config=validate_config(base).model_dump(mode="json"), store=str(store))

    rise = version["stats"]["rise"]
    assert rise["edits"] == rise["kept"] + sum(rise["dropped"].values())
    assert sum(t["edits"] for t in rise["by_error_type"].values()) == rise["edits"]
    assert rise["kept"] > 0 and rise["pairs"] == rise["kept"] and rise["over_ratio"] == 0
    assert set(rise["dropped"]) <= {"admits_error", "unchanged", "too_many_changes", "no_rule_edit"}
    assert rise["dropped"].get("admits_error", 0) > 0  # the scripted editor's bad edits were caught
    rows = run_query(store, "select error_type, edited_step, edit_span, chosen, rejected, edit_diff, sides_changed_share "
                            "from pairs where strategy = 'rise'").rows()
    assert len(rows) == rise["pairs"]
    for error_type, step, span, chosen, rejected, diff, sides in rows:
        text = rejected[0]["content"]
        assert error_type in rise["by_error_type"] and step >= 0 and diff
        assert 0 <= span["start"] < span["end"] <= len(text) and text != chosen[0]["content"]
        assert 0 < sides <= 1  # measured between the two published texts
    assert version["stats"]["rise_steps"]["rows"] == rise["kept"]  # and each kept edit is a step pair too
    sampled = run_query(store, "select count(*) from pairs where strategy = 'verified_vs_incorrect'").item()
    assert sampled + rise["pairs"] == version["stats"]["pairs"]["pairs"]

    capped = preference(config=validate_config(base | {"rise": base["rise"] | {"ratio": 0.5}}).model_dump(mode="json"),
                        store=str(store))

    assert capped["stats"]["rise"]["pairs"] == int(0.5 * sampled)
    assert capped["stats"]["rise"]["over_ratio"] == rise["kept"] - int(0.5 * sampled)
