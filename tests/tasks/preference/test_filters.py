"""tasks/filters.py: every filter on scripted pairs, with exact drop reasons."""

from __future__ import annotations

import polars as pl
import pytest

from prefmill.config import FiltersConfig
from prefmill.tasks.preference.filters import apply_filters, cream_consistency, kendall_tau


def _pairs(n: int) -> pl.DataFrame:
    return pl.DataFrame({
        "pair_id": [f"p{i}" for i in range(n)], "prompt_id": [f"q{i}" for i in range(n)],
        "keep": [True] * n, "drop_reason": pl.Series([None] * n, dtype=pl.String),
        "chosen_score": [1.0] * n, "rejected_score": [0.0] * n, "weight": [1.0] * n,
    })


def _verdicts(prefers: list, shares: list, consistent: list) -> pl.DataFrame:
    return pl.DataFrame({
        "pair_id": [f"p{i}" for i in range(len(prefers))], "judge_prefers": prefers,
        "prefers_chosen_share": shares, "swap_consistent": consistent,
    }, schema_overrides={"judge_prefers": pl.String, "prefers_chosen_share": pl.Float64, "swap_consistent": pl.Boolean})


class TestKendallTau:
    @pytest.mark.parametrize(("xs", "ys", "tau"), [
        ([1, 2, 3], [1, 2, 3], 1.0), ([1, 2, 3], [3, 2, 1], -1.0), ([1, 2, 3], [1, 3, 2], 1 / 3),
        ([1], [1], None), ([1, 1], [2, 3], None),
    ])
    def test_values(self, xs, ys, tau):
        assert kendall_tau(xs, ys) == tau


class TestApplyFilters:
    def test_swap_scir_and_verifier_agreement(self):
        verdicts = _verdicts(
            ["chosen", "chosen", "rejected", None, "chosen"],
            [1.0, 0.5, 0.0, None, 0.75],
            [True, True, True, False, None],
        )
        cfg = FiltersConfig(require_swap_consistent=True, scir_min_agreement=0.67, verifier_judge_agreement=True)
        out = apply_filters(_pairs(5), cfg=cfg, judged=verdicts)
        assert out.select("keep", "drop_reason").rows() == [
            (True, None),
            (False, "scir_disagreement"),
            (False, "scir_disagreement"),  # first reason that applies wins
            (False, "swap_inconsistent"),
            (False, "swap_unverified"),  # no verdict parsed in both orders: no evidence for it
        ]

    def test_verifier_contradiction_alone(self):
        out = apply_filters(_pairs(2), cfg=FiltersConfig(require_swap_consistent=False, verifier_judge_agreement=True),
                            judged=_verdicts(["rejected", "tie"], [0.0, 0.5], [True, True]))
        assert out["drop_reason"].to_list() == ["judge_contradicts_verifier", None]

    def test_already_dropped_rows_keep_their_reason(self):
        pairs = _pairs(1).with_columns(keep=pl.lit(False), drop_reason=pl.lit("no_margin"))
        out = apply_filters(pairs, cfg=FiltersConfig(), judged=_verdicts([None], [None], [False]))
        assert out.select("keep", "drop_reason").rows() == [(False, "no_margin")]

    def test_no_judge_adds_null_columns(self):
        out = apply_filters(_pairs(1), cfg=FiltersConfig())
        assert out.select("judge_prefers", "judge_agreement", "swap_consistent", "cream_consistency", "keep").rows() == [
            (None, None, None, None, True)
        ]

    @pytest.mark.parametrize(("mode", "keep", "reason", "weights"), [
        ("weight", [True, True, True], [None, None, None], [1.0, 0.0, 1.0]),
        ("drop", [True, False, True], [None, "cream_inconsistent", None], [1.0, 1.0, 1.0]),
    ])
    def test_cream(self, mode, keep, reason, weights):
        consistency = pl.DataFrame({"prompt_id": ["q0", "q1"], "cream_consistency": [1.0, -1.0]})
        out = apply_filters(_pairs(3), cfg=FiltersConfig(cream=mode, cream_min_consistency=0.0), consistency=consistency)
        assert out["keep"].to_list() == keep
        assert out["drop_reason"].to_list() == reason
        assert out["weight"].to_list() == weights


class TestCreamConsistency:
    def test_compares_shared_answers_across_versions(self):
        now = pl.DataFrame({"prompt_id": ["a"] * 3 + ["b"] * 2, "extracted": ["1", "2", "3", "5", "6"],
                            "score": [0.9, 0.5, 0.1, 0.2, 0.8]})
        parent = pl.DataFrame({"prompt_id": ["a"] * 3 + ["b"], "extracted": ["1", "2", "3", "5"],
                               "score": [0.1, 0.5, 0.9, 0.3]})
        out = cream_consistency(now, parent).sort("prompt_id")
        assert out.rows() == [("a", -1.0), ("b", None)]
