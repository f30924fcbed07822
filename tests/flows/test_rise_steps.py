"""The `rise_steps` config: published by the preference flow (scripted engine) beside `pairs` whenever
RISE runs, loadable by `datasets`, queryable by DuckDB, each row differing from its chosen side only in
the edited step."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datasets import load_dataset

from prefmill.config import validate_config
from prefmill.flows.preference import preference
from prefmill.query import run_query
from prefmill.schemas.tables import RISE_STEPS

pytestmark = pytest.mark.usefixtures("prefect_server")

FILE = "data/rise_steps/train-00000-of-00001.parquet"


def _recipe(train: Path, dataset: str, **rise) -> dict:
    return validate_config({
        "dataset": dataset, "source": {"path": str(train), "limit": 16},
        "engine": {"kind": "scripted", "p_error": 0.4}, "generate": {"n": 4},
        "rise": {"enabled": True, "edits_per_solution": 2, "use_reference": True, "ratio": None} | rise,
    }).model_dump(mode="json")


def test_rise_steps_are_published_and_load_with_datasets(tmp_path, gsm8k_test):
    store = tmp_path / "store"

    version = preference(config=_recipe(gsm8k_test.parent / "train.jsonl", "flow-rise-steps"), store=str(store))

    folder = Path(version["path"])
    manifest = json.loads((folder / "manifest.json").read_text())
    stats, rise = manifest["stats"]["rise_steps"], manifest["stats"]["rise"]
    assert stats["rows"] == rise["kept"] == manifest["files"][FILE]["rows"] > 0
    assert stats["by_error_type"] == {t: c["kept"] for t, c in rise["by_error_type"].items() if c["kept"]}
    steps = load_dataset("parquet", data_files=str(folder / FILE), split="train")
    assert steps.column_names == RISE_STEPS.names and len(steps) == stats["rows"]
    for row in steps:
        chosen, rejected = row["chosen"][0]["content"], row["rejected"][0]["content"]
        sc, sr = row["edit_span_chosen"], row["edit_span_rejected"]
        assert row["prompt"][-1]["role"] == "user" and len(row["chosen"]) == len(row["rejected"]) == 1
        assert chosen.startswith(row["prefix"]) and rejected.startswith(row["prefix"])
        assert len(row["prefix"]) <= sc["start"] and chosen[: sc["start"]] == rejected[: sr["start"]]
        assert chosen[sc["end"] :] == rejected[sr["end"] :]
        assert chosen[sc["start"] : sc["end"]] != rejected[sr["start"] : sr["end"]]
        assert 0 < row["changed_share"] <= 1 and row["edited_step"] >= 0
        assert (row["source"] == "reference") == (row["chosen_sample_id"] is None)

    # every step pair is the step of one whole-solution `rise` pair, whose tail the model may have rewritten
    joined = run_query(store, "select s.prefix, s.chosen, s.rejected, p.chosen as whole_chosen, p.rejected as "
                              "whole_rejected, p.sides_changed_share, p.changed_share from rise_steps s join pairs p "
                              "on p.rejected_sample_id = s.pair_id and p.strategy = 'rise'").rows()
    assert len(joined) == stats["rows"]
    for prefix, chosen, rejected, whole_chosen, whole_rejected, sides, step in joined:
        assert whole_chosen[0]["content"].startswith(chosen[0]["content"])
        assert whole_rejected[0]["content"].startswith(rejected[0]["content"])
        assert sides is not None and step is not None
    assert run_query(store, "select count(*) from rise_steps").item() == stats["rows"]


def test_no_rise_no_rise_steps_and_no_kept_edit_an_empty_table(tmp_path, gsm8k_test):
    train, store = gsm8k_test.parent / "train.jsonl", tmp_path / "store"

    without = preference(config=_recipe(train, "flow-no-rise", enabled=False), store=str(store))
    # every edit may change at most a hundredth of its step: none is kept
    none_kept = preference(config=_recipe(train, "flow-rise-none", max_changed_share=0.01, rules_fallback=False),
                           store=str(store))

    assert "rise_steps" not in without["stats"] and not (Path(without["path"]) / "data" / "rise_steps").exists()
    assert none_kept["stats"]["rise_steps"] == {"rows": 0, "by_error_type": {}, "by_editor": {}}
    # `datasets` refuses any split with no rows ("corresponds to no data"); the empty table keeps its schema
    empty = pq.read_table(Path(none_kept["path"]) / FILE)
    assert empty.num_rows == 0 and empty.schema.remove_metadata() == RISE_STEPS
