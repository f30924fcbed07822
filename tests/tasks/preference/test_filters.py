"""tasks/filters.py: every filter on scripted pairs, with exact drop reasons."""

from __future__ import annotations

import polars as pl
import pytest

from prefmill.config import FiltersConfig
from prefmill.tasks.preference.filters import apply_filters


def _pairs(n: int) -> pl.DataFrame:
    return pl.DataFrame({
        "pair_id": [f"p{i}" for i in range(n)], "prompt_id": [f"q{i}" for i in range(n)],
        "keep": [True] * n, "drop_reason": pl.Series([None] * n, dtype=pl.String),
        "chosen_score": [1.0] * n, "rejected_score": [0.0] * n, "weight": [1.0] * n, "label_smoothing": [0.0] * n,
        "margin": [1.0] * n, "difficulty": pl.Series([None] * n, dtype=pl.String),
    })


def _verdicts(prefers: list, shares: list, consistent: list) -> pl.DataFrame:
    return pl.DataFrame({
        "pair_id": [f"p{i}" for i in range(len(prefers))], "judge_prefers": prefers,
        "prefers_chosen_share": shares, "swap_consistent": consistent,
    }, schema_overrides={"judge_prefers": pl.String, "prefers_chosen_share": pl.Float64, "swap_consistent": pl.Boolean})


class TestApplyFilters:
    def test_swap_and_verifier_agreement(self):
        verdicts = _verdicts(["chosen", "rejected", None, "chosen"], [1.0, 0.0, None, 0.75], [True, True, False, None])
        cfg = FiltersConfig(require_swap_consistent=True, verifier_judge_agreement=True)
        out = apply_filters(_pairs(4), cfg=cfg, judged=verdicts)
        assert out.select("keep", "drop_reason").rows() == [
            (True, None),
            (False, "judge_contradicts_verifier"),
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



def _scir_pairs(*rows: tuple) -> pl.DataFrame:
    """Rows of (chosen judge score, rejected judge score, chosen correct, rejected correct, chosen is the reference)."""
    n = len(rows)
    frame = _pairs(n)
    return frame.with_columns(
        pl.Series("chosen_judge_score", [r[0] for r in rows], dtype=pl.Float64),
        pl.Series("rejected_judge_score", [r[1] for r in rows], dtype=pl.Float64),
        pl.Series("chosen_correct", [r[2] for r in rows], dtype=pl.Boolean),
        pl.Series("rejected_correct", [r[3] for r in rows], dtype=pl.Boolean),
        pl.Series("chosen_sample_id", [None if r[4] else f"q{i}-0" for i, r in enumerate(rows)], dtype=pl.String),
        pl.Series("rejected_sample_id", [f"q{i}-1" for i in range(n)], dtype=pl.String),
        pl.Series("chosen_engine", ["reference" if r[4] else "m" for r in rows], dtype=pl.String),
        pl.Series("chosen_version", [None] * n, dtype=pl.String),
        pl.Series("rejected_version", [None] * n, dtype=pl.String),
        pl.Series("reference_answer", ["18"] * n, dtype=pl.String),
    )


class TestScir:
    """SCIR across reward models: the pointwise judge, the pairwise judge (both orders), the verifier."""

    PAIRS = _scir_pairs(
        (9.0, 2.0, True, False, False),  # all three agree
        (2.0, 9.0, True, False, False),  # pointwise disagrees: 2 of 3
        (2.0, 9.0, True, False, False),  # pointwise and pairwise disagree: 1 of 3
        (None, 2.0, True, False, False),  # pointwise and pairwise missing (unparsed), verifier agrees
        (None, 2.0, True, False, True),  # chosen is the reference: no pointwise signal at all
        (9.0, 2.0, True, True, False),  # both correct: the verifier does not say chosen is better
    )
    VERDICTS = _verdicts(["chosen", "chosen", "rejected", None, "chosen", "chosen"],
                         [1.0, 1.0, 0.75, None, 1.0, 1.0], [True, True, True, None, True, True])

    def _run(self, **cfg) -> pl.DataFrame:
        cfg = FiltersConfig(require_swap_consistent=False, scir_min_agreement=0.66, **cfg)
        return apply_filters(self.PAIRS, cfg=cfg, judged=self.VERDICTS, pointwise=True)

    def test_signals_and_agreement(self):
        out = self._run()
        assert out.select("scir_pointwise", "scir_pairwise", "scir_verifier").rows() == [
            ("agree", "agree", "agree"), ("disagree", "agree", "agree"), ("disagree", "disagree", "agree"),
            ("missing", "missing", "agree"), (None, "agree", "agree"), ("agree", "agree", "disagree"),
        ]
        assert out["scir_agreement"].to_list() == pytest.approx([1.0, 2 / 3, 1 / 3, 1 / 3, 1.0, 2 / 3])
        assert out.select("keep", "drop_reason").rows() == [
            (True, None), (True, None),
            (False, "scir_disagreement"),  # today's SCIR kept it: 75% of one judge's samples preferred chosen
            (False, "scir_disagreement"),  # a missing signal counts against the pair
            (True, None), (True, None),
        ]

    def test_missing_signals_ignored(self):
        out = self._run(scir_missing="ignore")
        assert out["scir_agreement"][3] == 1.0 and out["keep"][3]

    def test_a_pair_with_no_parsed_verdict_does_not_pass(self):
        pairs = _scir_pairs((None, None, None, None, False)).with_columns(reference_answer=pl.lit(None, pl.String))
        verdicts = _verdicts([None], [None], [None])
        out = apply_filters(pairs, cfg=FiltersConfig(require_swap_consistent=False, scir_min_agreement=0.5),
                            judged=verdicts)
        assert out.select("keep", "drop_reason").rows() == [(False, "scir_disagreement")]  # today: kept
        ignored = apply_filters(pairs, cfg=FiltersConfig(require_swap_consistent=False, scir_min_agreement=0.5,
                                                         scir_missing="ignore"), judged=verdicts)
        assert ignored.select("keep", "drop_reason").rows() == [(False, "scir_no_signal")]

    def test_parent_side_has_no_pointwise_signal(self):
        pairs = _scir_pairs((9.0, 2.0, True, False, False)).with_columns(rejected_version=pl.lit("v0001"))
        out = apply_filters(pairs, cfg=FiltersConfig(scir_min_agreement=0.5), pointwise=True)
        assert out.select("scir_pointwise", "scir_pairwise", "scir_verifier", "scir_agreement").rows() == [
            (None, None, "agree", 1.0)
        ]


class TestCurriculumOrder:
    def test_filtered_pairs_reranked_and_sorted_when_curriculum_is_on(self):
        pairs = _pairs(3).with_columns(margin=pl.Series([0.2, 0.9, 0.5]), curriculum_rank=pl.Series([2, 0, 1]))
        verdicts = _verdicts(["chosen", "rejected", "chosen"], [1.0, 0.0, 1.0], [True, False, True])
        out = apply_filters(pairs, cfg=FiltersConfig(), judged=verdicts, curriculum=True)
        # p1 (widest margin) is dropped as swap-inconsistent: the kept pairs come first, widest margin first
        assert out.select("pair_id", "curriculum_rank", "keep").rows() == [
            ("p2", 0, True), ("p0", 1, True), ("p1", 2, False),
        ]
