"""prefmill/splits.py: train/test by a hash of prompt_id, the same side for a prompt in every table,
and the options' errors (library and CLI)."""

from __future__ import annotations

import hashlib
import math

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from prefmill.cli import app
from prefmill.errors import StoreError
from prefmill.splits import Splits, held_out, prompt_fraction, split_table
from tests.publish_helpers import _pairs, _votes, make_store

ids = st.text(min_size=1, max_size=12)
relaxed = settings(deadline=None)  # the first call warms pyarrow's compute kernels up: slow, not wrong
sizes = st.floats(min_value=0.0, max_value=1.0, exclude_max=True, allow_nan=False)


def _table(prompt_ids: list[str]) -> pa.Table:
    return pa.table({"row": list(range(len(prompt_ids))), "prompt_id": pa.array(prompt_ids, pa.string())})


def _sides(table: pa.Table, splits: Splits) -> tuple[set[str], set[str]]:
    parts = split_table(table, splits, where="test")
    return set(parts[splits.train]["prompt_id"].to_pylist()), set(parts[splits.test]["prompt_id"].to_pylist())


class TestSplitTable:
    @relaxed
    @given(st.lists(ids, max_size=60), sizes)
    def test_no_prompt_on_both_sides_and_no_row_lost(self, prompt_ids, test_size):
        table = _table(prompt_ids)
        parts = split_table(table, Splits(test_size), where="test")
        train, test = parts["train"], parts["test"]
        assert set(train["prompt_id"].to_pylist()).isdisjoint(test["prompt_id"].to_pylist())
        assert sorted(train["row"].to_pylist() + test["row"].to_pylist()) == list(range(len(prompt_ids)))
        assert train["row"].to_pylist() == sorted(train["row"].to_pylist())  # rows keep their stored order
        assert all(held_out(p, test_size) for p in test["prompt_id"].to_pylist())
        assert not any(held_out(p, test_size) for p in train["prompt_id"].to_pylist())

    @relaxed
    @given(st.lists(ids, max_size=40), sizes, st.randoms())
    def test_deterministic_whatever_the_row_order(self, prompt_ids, test_size, random):
        shuffled = list(prompt_ids)
        random.shuffle(shuffled)
        assert _sides(_table(prompt_ids), Splits(test_size)) == _sides(_table(shuffled), Splits(test_size))
        assert [held_out(p, test_size) for p in prompt_ids] == [held_out(p, test_size) for p in prompt_ids]

    @relaxed
    @given(st.lists(ids, min_size=1, max_size=30, unique=True), sizes)
    def test_a_prompt_is_on_the_same_side_in_every_table(self, prompt_ids, test_size):
        """Configs of different schemas (pairs, votes) with overlapping prompts: one side per prompt."""
        n = len(prompt_ids)
        pairs = _pairs(n).set_column(1, "prompt_id", pa.array(prompt_ids, pa.string()))
        votes = _votes(n).set_column(0, "prompt_id", pa.array(list(reversed(prompt_ids)), pa.string())).slice(0, n // 2 + 1)
        splits = Splits(test_size, ("train_prefs", "test_prefs"))
        pairs_train, pairs_test = _sides(pairs, splits)
        votes_train, votes_test = _sides(votes, splits)
        assert pairs_train.isdisjoint(votes_test) and pairs_test.isdisjoint(votes_train)
        assert votes_test <= pairs_test and votes_train <= pairs_train

    @given(ids, sizes, sizes)
    def test_a_larger_test_size_only_moves_prompts_into_test(self, prompt_id, a, b):
        low, high = sorted((a, b))
        assert not held_out(prompt_id, low) or held_out(prompt_id, high)
        assert not held_out(prompt_id, 0.0)

    @settings(max_examples=30, deadline=None)
    @given(st.text(max_size=8), st.floats(min_value=0.01, max_value=0.99))
    def test_the_share_held_out_is_binomial(self, prefix, test_size):
        n = 4000
        k = sum(held_out(f"{prefix}{i}", test_size) for i in range(n))
        assert abs(k - n * test_size) <= 5 * math.sqrt(n * test_size * (1 - test_size)) + 1

    def test_the_fraction_is_sha256_of_the_id(self):
        digest = hashlib.sha256("p0".encode()).digest()
        assert prompt_fraction("p0") == int.from_bytes(digest[:8], "big") / 2**64
        assert 0.08 < prompt_fraction("p0") < 0.09 and held_out("p0", 0.1) and not held_out("p1", 0.1)

    def test_test_size_zero_keeps_the_table_whole(self):
        table = pa.table({"x": [1, 2]})  # no prompt_id needed when nothing is held out
        parts = split_table(table, Splits(0), where="test")
        assert parts["train"] is table and parts["test"].num_rows == 0

    def test_a_table_without_prompt_ids_cannot_be_split(self):
        with pytest.raises(StoreError, match="has no `prompt_id` column") as info:
            split_table(pa.table({"x": [1]}), Splits(), where="config `x`")
        assert "--test-size 0" in info.value.hint
        with pytest.raises(StoreError, match="1 rows have no prompt_id"):
            split_table(pa.table({"prompt_id": pa.array(["a", None], pa.string())}), Splits(), where="config `x`")


class TestOptions:
    @pytest.mark.parametrize("size", [1.0, 1.5, -0.1, float("nan"), float("inf")])
    def test_test_size_outside_zero_one(self, size):
        with pytest.raises(StoreError, match=r"--test-size must be in \[0, 1\)"):
            Splits(size)

    @pytest.mark.parametrize("text", ["train", "train,train", "a,b,c", "tr ain,test", "all,test", ",test", "train,tést"])
    def test_split_names(self, text):
        with pytest.raises(StoreError, match="--splits must be two distinct split names"):
            Splits.from_options(0.1, text)

    def test_good_options(self):
        assert Splits.from_options(0.1, " train_prefs , test_prefs ").names == ("train_prefs", "test_prefs")
        assert Splits(0).published == ("train",) and Splits(0.25).key == "splits=train,test test_size=0.25"

    @pytest.mark.parametrize(("command", "options", "message"), [
        ("publish", ["--test-size", "1"], "--test-size must be in [0, 1)"),
        ("publish", ["--splits", "train"], "--splits must be two distinct split names"),
        ("card", ["--test-size", "-0.5"], "--test-size must be in [0, 1)"),
        ("card", ["--splits", "a,a"], "--splits must be two distinct split names"),
    ])
    def test_the_cli_says_one_clear_line(self, tmp_path, command, options, message):
        store, out = make_store(tmp_path / "store"), tmp_path / "out"
        repo = ["--repo", str(out)] if command == "publish" else []
        result = CliRunner().invoke(app, [command, "pref", *repo, *options, "--store", str(store)])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert message in result.output and "hint:" in result.output
        assert not out.exists()
