"""tasks/step_pairs.py: step-level preference pairs on hand-made labelled chains, plus properties."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefmill.errors import InputError
from prefmill.tasks.process.mc_label import OUTPUT_SCHEMA as MC_SCHEMA
from prefmill.tasks.process.step_labels import first_error as _first_error
from prefmill.tasks.process.step_pairs import OUTPUT_SCHEMA, merge_prefix, step_pairs

PROMPTS = {"q1": [{"role": "user", "content": "What is (2 + 3) * 4?"}], "q2": [{"role": "user", "content": "What is 1 + 1?"}]}


def _chain(chain_id: str, prompt_id: str, steps: list[str], labels: list[bool | None], values: list[float | None] | None = None,
           first_error: int | None | str = "auto") -> dict:
    values = values if values is not None else [None if v is None else float(v) for v in labels]
    return {"chain_id": chain_id, "prompt_id": prompt_id, "prompt": PROMPTS[prompt_id], "completions": steps,
            "labels": labels, "values": values, "method": "mc",
            "first_error_step": _first_error(labels) if first_error == "auto" else first_error}


def _frame(*chains: dict, keep: list[bool] | None = None) -> pl.DataFrame:
    schema = {c: MC_SCHEMA[c] for c in ("chain_id", "prompt_id", "prompt", "completions", "labels", "values", "method", "first_error_step")}
    frame = pl.DataFrame(list(chains), schema=schema)
    return frame.with_columns(keep=pl.Series(keep)) if keep is not None else frame


T, F = True, False
TREE = (
    _chain("a", "q1", ["s1", "s2", "s3"], [T, T, T], [1.0, 1.0, 1.0]),
    _chain("b", "q1", ["s1", "s2", "x3"], [T, T, F], [0.5, 0.5, 0.0]),
    _chain("c", "q1", ["s1", "y2", "y3"], [T, F, F], [0.5, 0.0, 0.0]),
    _chain("d", "q1", ["z1", "z2"], [F, F], [0.0, 0.0]),
    _chain("e", "q1", ["z1", "w2"], [F, F], [0.0, 0.0]),  # same wrong first step as d: no second pair
    _chain("f", "q2", ["1 + 1 = 2"], [T], [1.0]),
    _chain("g", "q2", ["one plus one is two"], [T], [0.75]),
)


class TestStepPairs:
    def test_exact_pairs_on_a_prefix_tree(self):
        pairs, stats = step_pairs(_frame(*TREE))
        assert pairs.schema == pl.Schema(OUTPUT_SCHEMA)
        got = pairs.select("prompt_id", "prefix_steps", "chosen_chain_id", "rejected_chain_id", "chosen_value",
                           "rejected_value", "margin", "kind", "method").rows()
        assert got == [
            ("q1", 0, "a", "d", 2 / 3, 0.0, 2 / 3, "first_error", "mc"),
            ("q1", 1, "a", "c", 0.75, 0.0, 0.75, "first_error", "mc"),
            ("q1", 2, "a", "b", 1.0, 0.0, 1.0, "first_error", "mc"),
        ]
        user = PROMPTS["q1"][0]
        assert pairs["prompt"].to_list() == [
            [user], [user, {"role": "assistant", "content": "s1"}], [user, {"role": "assistant", "content": "s1\ns2"}],
        ]
        assert [c[0]["content"] for c in pairs["chosen"]] == ["s1", "s2", "s3"]
        assert [r[0]["content"] for r in pairs["rejected"]] == ["z1", "y2", "x3"]
        assert {c[0]["role"] for c in pairs["chosen"]} == {r[0]["role"] for r in pairs["rejected"]} == {"assistant"}
        assert pairs["pair_id"].n_unique() == 3
        assert stats == {
            "questions": 2, "chains_used": 7, "chains_not_kept": 0, "skipped_null_steps": 0, "skipped_value_order": 0,
            "skipped_wrong_prefix": 1, "pairs": 3, "pairs_first_error": 3, "pairs_contrast": 0, "pairs_by_prefix_steps": {0: 1, 1: 1, 2: 1},
            "no_contrast": 1,  # q2: two correct first steps, nothing to contrast
        }

    def test_no_pair_after_a_prefix_labelled_wrong(self):
        """Step-DPO contrasts next steps from a correct prefix; after a wrong step, "can still reach the
        answer" is MC noise (a lucky recovery), not a better step."""
        chains = (
            _chain("a", "q1", ["bad", "lucky"], [F, T], [0.0, 0.5]),  # not monotone: kept as given here
            _chain("b", "q1", ["bad", "worse"], [F, F], [0.0, 0.0]),
        )
        pairs, stats = step_pairs(_frame(*chains))
        assert pairs.height == 0 and stats["skipped_wrong_prefix"] == 1

    def test_same_texts_give_one_pair_and_pool_their_values(self):
        chains = (
            _chain("a", "q1", ["good"], [T], [1.0]),
            _chain("b", "q1", ["good"], [T], [0.5]),
            _chain("c", "q1", ["bad"], [F], [0.0]),
            _chain("d", "q1", ["bad"], [F], [0.0]),
        )
        pairs, _ = step_pairs(_frame(*chains))
        assert pairs.select("chosen_chain_id", "rejected_chain_id", "chosen_value").rows() == [("a", "c", 0.75)]

    def test_a_step_with_one_true_chain_is_good(self):
        """Math-Shepherd's hard estimate over all rollouts of a step: any success counts."""
        chains = (
            _chain("a", "q1", ["s1"], [F], [0.0]),
            _chain("b", "q1", ["s1"], [T], [0.5]),
            _chain("c", "q1", ["bad"], [F], [0.0]),
        )
        pairs, _ = step_pairs(_frame(*chains))
        assert pairs.select("chosen_chain_id", "rejected_chain_id", "chosen_value").rows() == [("b", "c", 0.25)]

    def test_null_labels_are_never_a_side(self):
        chains = (
            _chain("a", "q1", ["s1", "s2"], [T, T]),
            _chain("b", "q1", ["s1", "n2"], [T, None]),  # failed step: no label, no pair
            _chain("c", "q1", ["n1"], [None]),
            _chain("d", "q1", ["s1", "s2b"], [T, None], [1.0, 0.0]),  # label null though value set: still unusable
        )
        pairs, stats = step_pairs(_frame(*chains))
        assert pairs.height == 0
        assert stats["skipped_null_steps"] == 3 and stats["no_contrast"] == 1

    def test_null_label_chain_does_not_hide_a_labelled_one(self):
        chains = (
            _chain("a", "q1", ["good"], [T]),
            _chain("b", "q1", ["bad"], [None]),
            _chain("c", "q1", ["bad"], [F]),
        )
        pairs, _ = step_pairs(_frame(*chains))
        assert pairs.select("chosen_chain_id", "rejected_chain_id", "kind").rows() == [("a", "c", "first_error")]

    def test_contrast_when_the_rejected_chain_erred_earlier(self):
        chains = (
            _chain("a", "q1", ["s1", "s2", "s3"], [T, T, T]),
            _chain("h", "q1", ["s1", "s2", "k3"], [T, F, F], [0.5, 0.0, 0.0]),  # MC noise on s2; first error 1
        )
        pairs, stats = step_pairs(_frame(*chains))
        assert pairs.select("prefix_steps", "rejected_chain_id", "kind").rows() == [(2, "h", "contrast")]
        assert stats["pairs_contrast"] == 1

    def test_rejected_chain_prefers_the_one_whose_first_error_it_is(self):
        chains = (
            _chain("a", "q1", ["s1", "s2"], [T, T]),
            _chain("b", "q1", ["s1", "x2"], [F, F], [0.0, 0.0]),  # x2 after an earlier False
            _chain("c", "q1", ["s1", "x2"], [T, F], [1.0, 0.0]),  # x2 is c's first error
        )
        pairs, _ = step_pairs(_frame(*chains))
        assert pairs.filter(pl.col("prefix_steps") == 1).select("rejected_chain_id", "kind").rows() == [("c", "first_error")]

    def test_values_must_order_the_pair(self):
        chains = (_chain("a", "q1", ["good"], [T], [0.0]), _chain("b", "q1", ["bad"], [F], [0.0]))  # inconsistent input
        pairs, stats = step_pairs(_frame(*chains))
        assert pairs.height == 0 and stats["skipped_value_order"] == 1

    def test_only_kept_chains(self):
        pairs, stats = step_pairs(_frame(*TREE, keep=[True, True, True, False, False, True, True]))
        assert pairs["rejected_chain_id"].to_list() == ["c", "b"]
        assert stats["chains_not_kept"] == 2

    def test_input_order_does_not_matter(self):
        forward, _ = step_pairs(_frame(*TREE))
        backward, _ = step_pairs(_frame(*reversed(TREE)))
        assert backward.sort("prompt_id", maintain_order=True).equals(forward)

    def test_bad_input(self):
        with pytest.raises(InputError, match="lacks"):
            step_pairs(_frame(*TREE).drop("values"))
        with pytest.raises(InputError, match="repeat"):
            step_pairs(_frame(TREE[0], TREE[0]))
        with pytest.raises(InputError, match="aligned"):
            step_pairs(_frame(_chain("a", "q1", ["s1", "s2"], [T], [1.0])))

    def test_merge_prefix_moves_the_prefix_into_both_sides(self):
        pairs, _ = step_pairs(_frame(*TREE))
        merged = merge_prefix(pairs)
        assert merged.schema == pairs.schema
        assert merged["prompt"].to_list() == [PROMPTS["q1"]] * 3
        assert [c[0]["content"] for c in merged["chosen"]] == ["s1", "s1\ns2", "s1\ns2\ns3"]
        assert [r[0]["content"] for r in merged["rejected"]] == ["z1", "s1\ny2", "s1\ns2\nx3"]


@st.composite
def _labelled_chains(draw):
    n = draw(st.integers(1, 8))
    chains = []
    for k in range(n):
        steps = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=4))
        labels = draw(st.lists(st.sampled_from([True, False, None]), min_size=len(steps), max_size=len(steps)))
        values = [None if lab is None else (draw(st.sampled_from([0.25, 0.5, 1.0])) if lab else 0.0) for lab in labels]
        chains.append(_chain(f"c{k}", draw(st.sampled_from(["q1", "q2"])), steps, labels, values))
    return chains


@settings(max_examples=300, deadline=None)
@given(chains=_labelled_chains())
def test_every_pair_is_ordered_shares_its_prefix_and_is_unique(chains):
    pairs, stats = step_pairs(_frame(*chains))
    by_id = {c["chain_id"]: c for c in chains}
    for pair in pairs.iter_rows(named=True):
        assert pair["chosen_value"] > pair["rejected_value"] and pair["margin"] > 0
        i = pair["prefix_steps"]
        good, bad = by_id[pair["chosen_chain_id"]], by_id[pair["rejected_chain_id"]]
        assert good["prompt_id"] == bad["prompt_id"] == pair["prompt_id"]
        assert good["completions"][:i] == bad["completions"][:i]
        prefix = pair["prompt"][-1]["content"].split("\n") if i else []
        assert good["completions"][:i] == prefix
        assert good["completions"][i] == pair["chosen"][0]["content"] and good["labels"][i] is True
        assert bad["completions"][i] == pair["rejected"][0]["content"] and bad["labels"][i] is False
        assert pair["chosen"][0]["content"] != pair["rejected"][0]["content"]
    keys = pairs.select("prompt_id", "prefix_steps", "prompt", "chosen", "rejected")
    assert keys.unique().height == pairs.height
    assert pairs["pair_id"].n_unique() == pairs.height
    assert stats["pairs"] == pairs.height
    assert stats["no_contrast"] == len({c["prompt_id"] for c in chains} - set(pairs["prompt_id"].to_list()))
