"""Iterations on the scripted engine, through real Prefect runs: CREAM scores THIS iteration's responses
with the previous iteration's judge (a different model), `anchored` rejects from the lineage's first
model, and `pairs.curriculum` publishes the pairs in curriculum order."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from prefmill.config import EngineConfig, validate_config
from prefmill.engines import register_engine
from prefmill.errors import ConfigError
from prefmill.engines.scripted import ScriptedEngine, gsm8k_judge_policy, gsm8k_policy, routed
from prefmill.flows.preference import preference
from prefmill.query import run_query
from prefmill.sources import read_table
from prefmill.store import first_iteration, previous_iteration

pytestmark = pytest.mark.usefixtures("prefect_server")

LIMIT = 40


def _references(train: Path) -> dict[str, str]:
    rows = read_table(train).head(LIMIT)
    return dict(zip(rows["question"], rows["answer"]))


def _model(train: Path, p_error: float, *, judge_noise: float, salt: str) -> tuple[dict, ScriptedEngine]:
    """A scripted model (policy and its own judge) registered under `engine: {kind: scripted, p_error}`.
    The judge's randomness is salted by model, so two random judges are independent."""
    refs = _references(train)
    judge = gsm8k_judge_policy(refs, p_noise=judge_noise)

    def salted(request, index, rng):
        return judge(request, index, random.Random(f"{salt}|{rng.random()}"))

    engine = ScriptedEngine(routed(gsm8k_policy(refs, p_error=p_error), salted), name=f"{salt}-p{p_error}")
    cfg = {"kind": "scripted", "p_error": p_error}
    register_engine(EngineConfig.model_validate(cfg), engine)
    return cfg, engine


def _run(store: Path, train: Path, engine: dict, *, dataset: str, **sections) -> dict:
    recipe = {"dataset": dataset, "source": {"path": str(train), "limit": LIMIT}, "engine": engine,
              "generate": {"n": 4, "seed": 11}, "judge": {"pointwise": True}} | sections
    return preference(config=validate_config(recipe).model_dump(mode="json"), store=str(store))


def _drop_rate(store: Path, train: Path, *, judge_noise: float, dataset: str) -> tuple[float, dict]:
    old, old_engine = _model(train, 0.4, judge_noise=judge_noise, salt="old")
    new, _ = _model(train, 0.3, judge_noise=judge_noise, salt="new")
    _run(store, train, old, dataset=dataset)
    calls = old_engine.calls
    second = _run(store, train, new, dataset=dataset, filters={"cream": "drop"})
    cream = second["stats"]["pairs"]["cream"]
    assert old_engine.calls - calls == 1  # the previous judge: one batched call, in the cream-judge stage
    assert cream["previous_version"] == "v0001" and cream["judge"] == old_engine.fingerprint
    return cream["drop_rate"], cream


def test_cream_separates_agreeing_from_random_judges(tmp_path, gsm8k_test):
    """Today's CREAM (mean blended score per final answer across the two versions' samples) drops
    almost nothing from random judges: the verifier dominates those scores."""
    train = gsm8k_test.parent / "train.jsonl"
    agree, agree_stats = _drop_rate(tmp_path / "a", train, judge_noise=0.0, dataset="cream-agree")
    random_, random_stats = _drop_rate(tmp_path / "r", train, judge_noise=1.0, dataset="cream-random")
    print(f"CREAM drop rate through the flow: agreeing judges {agree:.3f} ({agree_stats['pairs_scored']} pairs), "
          f"random judges {random_:.3f} ({random_stats['pairs_scored']} pairs)")
    assert agree_stats["pairs_scored"] > 10 and random_stats["pairs_scored"] > 10
    assert agree == 0.0 and random_ >= 0.3
    assert agree_stats["mean_consistency"] == 1.0 and random_stats["mean_consistency"] < 0.7


def test_previous_iteration_is_the_latest_version_of_another_model(tmp_path, gsm8k_test):
    train, store = gsm8k_test.parent / "train.jsonl", tmp_path / "store"
    a, engine_a = _model(train, 0.4, judge_noise=0.0, salt="a")
    b, engine_b = _model(train, 0.2, judge_noise=0.0, salt="b")

    first = _run(store, train, a, dataset="lineage", filters={"cream": "weight"})
    again = _run(store, train, a, dataset="lineage", filters={"cream": "weight"}, pairs={"min_margin": 0.1})

    for version in (first, again):  # no version of another model: CREAM does nothing, and says so
        cream = version["stats"]["pairs"]["cream"]
        assert set(cream["prompts"]) == {"no_previous_iteration"} and cream["previous_version"] is None
        assert "did nothing" in cream["note"]
    assert again["version"] == "v0002"
    assert run_query(store, "select count(cream_consistency) from pairs").item() == 0  # today: v0002 vs v0001

    _run(store, train, b, dataset="lineage", filters={"cream": "weight"})
    fourth = _run(store, train, b, dataset="lineage", filters={"cream": "weight"}, pairs={"min_margin": 0.1})
    assert fourth["stats"]["pairs"]["cream"]["previous_version"] == "v0002"  # not v0003: that is model b too
    assert previous_iteration(store, "lineage", engine_b.fingerprint) == "v0002"
    assert previous_iteration(store, "lineage", engine_a.fingerprint) == "v0004"
    assert previous_iteration(store, "lineage", "scripted:never-ran") == "v0004"
    assert first_iteration(store, "lineage") == "v0001"
    weights = run_query(store, "select min(weight), max(label_smoothing) from pairs where version = 'v0004'").rows()
    assert weights == [(1.0, 0.0)]  # two judges without noise rank alike: C = 1, no smoothing


def test_previous_judge_from_the_manifest_or_the_recipe(tmp_path, gsm8k_test):
    train, store = gsm8k_test.parent / "train.jsonl", tmp_path / "store"
    a, _ = _model(train, 0.4, judge_noise=0.0, salt="a")
    b, _ = _model(train, 0.2, judge_noise=0.0, salt="b")
    judge_cfg, judge = _model(train, 0.1, judge_noise=0.5, salt="judge")
    other_cfg, other = _model(train, 0.05, judge_noise=0.5, salt="other")

    _run(store, train, a, dataset="judges", judge={"pointwise": True, "engine": judge_cfg})
    second = _run(store, train, b, dataset="judges", filters={"cream": "weight"})
    third = _run(store, train, b, dataset="judges", filters={"cream": "weight", "cream_judge": other_cfg})

    assert second["stats"]["pairs"]["cream"]["judge"] == judge.fingerprint  # config.judge.engine of v0001
    assert third["stats"]["pairs"]["cream"]["judge"] == other.fingerprint  # filters.cream_judge
    assert third["stats"]["pairs"]["cream"]["previous_version"] == "v0001"


def test_anchored_rejects_from_the_first_model_of_the_lineage(tmp_path, gsm8k_test):
    train, store = gsm8k_test.parent / "train.jsonl", tmp_path / "store"
    models = [_model(train, p, judge_noise=0.0, salt=f"m{p}") for p in (0.6, 0.4, 0.2)]
    _run(store, train, models[0][0], dataset="anchored")
    _run(store, train, models[1][0], dataset="anchored")
    third = _run(store, train, models[2][0], dataset="anchored", pairs={"strategy": "anchored"})

    rows = run_query(store, "select distinct rejected_version, rejected_engine from pairs where version = 'v0003'").rows()
    assert third["stats"]["pairs"]["pairs"] > 0
    assert rows == [("v0001", models[0][1].fingerprint)]  # the initial model, not the latest version (v0002)


def test_future_guided_chosen_takes_the_newer_models_better_samples(tmp_path, gsm8k_test):
    """Temporal Self-Rewarding: rejected from the initial model (v0001), chosen from the future model's
    samples (v0002) where they beat this iteration's best under this iteration's judge."""
    train, store = gsm8k_test.parent / "train.jsonl", tmp_path / "store"
    (initial, _), (current, engine), (future, _) = (_model(train, p, judge_noise=0.2, salt=f"t{p}") for p in (0.7, 0.5, 0.1))
    _run(store, train, initial, dataset="temporal")
    _run(store, train, future, dataset="temporal")
    calls = engine.calls
    third = _run(store, train, current, dataset="temporal", pairs={"strategy": "anchored", "future_version": "v0002"})
    assert engine.calls - calls == 3  # generate, judge its samples, judge the future's samples

    rows = dict(run_query(store, "select chosen_source, count(*) from pairs where version = 'v0003' "
                                 "group by 1").rows())
    assert rows.get("future", 0) > 0 and rows.get("sample", 0) > 0, rows
    assert third["stats"]["pairs"]["chosen_source"] == rows
    sides = run_query(store, "select distinct chosen_version, rejected_version from pairs where version = 'v0003' "
                             "and chosen_source = 'future'").rows()
    assert sides == [("v0002", "v0001")]
    with pytest.raises(ConfigError, match="made by this run's own model"):
        _run(store, train, current, dataset="temporal", pairs={"strategy": "anchored", "future_version": "v0003"})


def test_curry_pairs_are_published_in_curriculum_order(tmp_path, gsm8k_test):
    train, store = gsm8k_test.parent / "train.jsonl", tmp_path / "store"
    a, _ = _model(train, 0.5, judge_noise=0.3, salt="a")
    version = _run(store, train, a, dataset="curry", pairs={"strategy": "curry", "curriculum": True})

    table = pq.read_table(Path(version["path"]) / "data" / "pairs" / "train-00000-of-00001.parquet")
    ranks, margins = table["curriculum_rank"].to_pylist(), table["margin"].to_pylist()
    assert len(ranks) > 10 and ranks == list(range(len(ranks)))  # row order is the curriculum
    assert margins == sorted(margins, reverse=True)  # easy (wide margin) to hard
    rows = table.select(["prompt_id", "chosen_sample_id"]).to_pylist()
    chosen = {}
    for row in rows:  # Curry-DPO: one chosen (the best response) per prompt, against each lower-ranked one
        chosen.setdefault(row["prompt_id"], set()).add(row["chosen_sample_id"])
    assert all(len(ids) == 1 for ids in chosen.values())
