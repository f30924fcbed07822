"""prefmill/card.py: the dataset card a publish writes (YAML front matter, body, usage snippets)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from prefmill.card import card_marker, front_matter, render_card
from prefmill.errors import StoreError
from prefmill.splits import Splits
from tests.publish_helpers import make_store


@pytest.fixture
def store(tmp_path) -> Path:
    return make_store(tmp_path / "store")


class TestFrontMatter:
    def test_lists_every_config_with_a_data_file_per_split(self, store):
        for dataset, configs in (("pref", ["samples", "pairs", "votes", "rise_steps"]), ("prm", ["steps", "step_pairs"])):
            meta = front_matter(render_card(store, dataset, None))
            assert [c["config_name"] for c in meta["configs"]] == configs
            for c in meta["configs"]:
                assert c["data_files"] == [{"split": s, "path": f"data/{c['config_name']}/{s}-*.parquet"}
                                           for s in ("train", "test")]
            assert sum(bool(c.get("default")) for c in meta["configs"]) == 1
            assert meta["license"] == "mit"  # GSM8K, a local file or the Hub id
            assert "prefmill" in meta["tags"] and meta["task_categories"][0] == "text-generation"
        assert yaml.safe_load(render_card(store, "other", None).split("---\n")[1])["license"] == "other"

    def test_dataset_info_has_the_rows_of_every_split(self, store):
        meta = front_matter(render_card(store, "pref", None, splits=Splits(0.1, ("train_prefs", "test_prefs"))))
        info = {c["config_name"]: {s["name"]: s["num_examples"] for s in c["splits"]} for c in meta["dataset_info"]}
        assert info == {"samples": {"train_prefs": 6, "test_prefs": 2}, "pairs": {"train_prefs": 3, "test_prefs": 1},
                        "votes": {"train_prefs": 3, "test_prefs": 1}, "rise_steps": {"train_prefs": 2, "test_prefs": 1}}
        assert all(s["num_bytes"] > 0 for c in meta["dataset_info"] for s in c["splits"])

    def test_an_empty_split_has_no_data_file(self, store):
        meta = front_matter(render_card(store, "pref", None, splits=Splits(0.05)))  # p0..p3 are all above 0.05
        assert all(c["data_files"] == [{"split": "train", "path": f"data/{c['config_name']}/train-*.parquet"}]
                   for c in meta["configs"])
        assert [s["name"] for c in meta["dataset_info"] for s in c["splits"]] == ["train"] * 4


class TestBody:
    def test_preference_body(self, store):
        card = render_card(store, "pref", None, repo="me/pref")
        for text in (
            "`preference` flow", "the local file `gsm8k/train.jsonl`", "scripted:t", "| `pairs` | 4 | 3 | 1 |",
            "| `samples` | 8 | 6 | 2 |", "| config | rows | `train` | `test` | what it is |",
            "accuracy (share verified correct) 50.0%", "pass@n 100.0%", "| `swap_inconsistent` | 2 |",
            "| `[0.8, 0.9)` | 1 |", "| `change_number` | 3 | 2 |", "swap consistency", "3 of 5 candidates",
            "strategy=verified_vs_incorrect", "from trl import DPOConfig, DPOTrainer",
            'ds = load_dataset("me/pref", "pairs", revision="v0001")  # splits: train, test',
            'train_dataset=ds["train"], eval_dataset=ds["test"], processing_class=tokenizer',
            "is below 0.1, else in `train`",
        ):
            assert text in card, text
        assert "/data/shared" not in card  # the local folders around the source are not published
        assert card.index("[0.8, 0.9)") < card.index("[0.9, inf)")
        assert card_marker(card)[3] == "splits=train,test test_size=0.1"

    def test_process_body(self, store):
        card = render_card(store, "prm", None, splits=Splits(0.1, ("train_prefs", "test_prefs")))
        for text in ("the Hub dataset `openai/gsm8k`", "label balance 75.0% positive", "| `1` | 2 |",
                     "PRMTrainer", "method=mc", 'load_dataset("<user>/prm", "steps", revision="v0001")',
                     'row = ds["train_prefs"][0]', 'train_dataset=ds["train_prefs"], eval_dataset=ds["test_prefs"]'):
            assert text in card, text

    def test_empty_splits_are_named(self, store):
        card = render_card(store, "pref", None, splits=Splits(0.05))
        assert "| `pairs` | 4 | 4 | 0 (not published) |" in card
        assert "Empty, so not published: `test` of `samples`, `test` of `pairs`, `test` of `votes`, `test` of `rise_steps`." in card
        assert "eval_dataset" not in card and 'train_dataset=ds["train"], processing_class' in card

    def test_train_only(self, store):
        card = render_card(store, "pref", None, repo="/tmp/folder", splits=Splits(0, ("train", "heldout")))
        assert "| config | rows | `train` | what it is |" in card and "| `pairs` | 4 | 4 |" in card
        assert "published with test size 0: no test split" in card and "heldout" not in card
        assert 'load_dataset("/tmp/folder", "pairs")  # splits: train' in card  # a folder has no revision
        assert card_marker(card)[3] == "splits=train test_size=0.0"

    def test_every_plot_is_linked(self, store):
        card = render_card(store, "pref", None)
        for name in ("margin_histogram", "rise_error_types", "pair_drops"):
            assert f"(plots/{name}.png)" in card, name
        assert "plots/" not in render_card(store, "other", None)  # no stats, no histogram

    def test_unknown_version(self, store):
        with pytest.raises(StoreError, match="no version 'v0009'"):
            render_card(store, "pref", "v0009")
