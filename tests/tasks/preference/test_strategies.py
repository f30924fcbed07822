"""tasks/pairs.py strategies beyond verified_vs_incorrect, with the expected pairs spelled out."""

from __future__ import annotations

import polars as pl
import pytest

from prefmill.config import PairsConfig
from prefmill.tasks.preference.pairs import build_pairs, sample_scores
from tests.tasks.preference.test_pairs import REFERENCE, _prompts, _verified


def _pairs(frame: pl.DataFrame) -> list[tuple]:
    return frame.filter(pl.col("keep")).select("chosen_sample_id", "rejected_sample_id", "margin").rows()


SAMPLES = _verified([
    {"prompt_id": "p", "sample_index": 0, "correct": True, "mean_logprob": -0.5},
    {"prompt_id": "p", "sample_index": 1, "correct": False, "mean_logprob": -0.2},
    {"prompt_id": "p", "sample_index": 2, "correct": False, "mean_logprob": -0.9},
    {"prompt_id": "p", "sample_index": 3, "correct": True, "mean_logprob": -0.1},
])
PROMPTS = _prompts(("p", REFERENCE, "18"))


class TestSampleScores:
    def test_verifier_only(self):
        assert sample_scores(SAMPLES, cfg=PairsConfig())["score"].to_list() == [1.0, 0.0, 0.0, 1.0]

    def test_blends_judge_score_and_falls_back_when_unjudged(self):
        judged = SAMPLES.with_columns(judge_score=pl.Series([10.0, 1.0, None, 5.5]))
        scores = sample_scores(judged, cfg=PairsConfig(judge_weight=0.4))["score"].to_list()
        assert scores == [1.0, 0.0, 0.0, 0.6 + 0.4 * 0.5]


class TestBestWorst:
    def test_top_vs_bottom_ties_broken_by_confidence(self):
        out = build_pairs(SAMPLES, PROMPTS, cfg=PairsConfig(strategy="best_worst"))
        # Best: p-3 (correct, surest); worst: p-1 (incorrect, surest = hardest negative).
        assert _pairs(out) == [("p-3", "p-1", 1.0)]

    def test_no_margin_when_all_equal_without_reference(self):
        all_wrong = SAMPLES.with_columns(correct=pl.lit(False))
        out = build_pairs(all_wrong, PROMPTS, cfg=PairsConfig(strategy="best_worst", reference_as_chosen=False))
        assert out.select("keep", "drop_reason").rows() == [(False, "no_margin")]

    def test_reference_chosen_when_nothing_scores(self):
        all_wrong = SAMPLES.with_columns(correct=pl.lit(False))
        out = build_pairs(all_wrong, PROMPTS, cfg=PairsConfig(strategy="best_worst"))
        assert out.select("chosen_source", "chosen_sample_id", "rejected_sample_id", "margin").rows() == [
            ("reference", None, "p-3", 1.0)  # all score 0: the surest wrong sample is the hardest negative
        ]

    def test_min_margin(self):
        judged = SAMPLES.with_columns(judge_score=pl.Series([1.0, 10.0, 10.0, 1.0]))
        cfg = PairsConfig(strategy="best_worst", judge_weight=0.9, min_margin=0.2)
        out = build_pairs(judged, PROMPTS, cfg=cfg)
        # correct+judge 1 -> 0.1; wrong+judge 10 -> 0.9: best is now an incorrect sample, margin 0.8;
        # p-0 and p-3 tie at 0.1 and the surer one (p-3) is rejected.
        assert _pairs(out) == [("p-1", "p-3", 0.8)]


class TestAllRanked:
    def test_every_pair_with_margin_widest_first_and_capped(self):
        out = build_pairs(SAMPLES, PROMPTS, cfg=PairsConfig(strategy="all_ranked", max_pairs_per_prompt=3))
        assert _pairs(out) == [("p-3", "p-1", 1.0), ("p-3", "p-2", 1.0), ("p-0", "p-1", 1.0)]
        assert out["curriculum_rank"].to_list() == [0, 1, 2]

    def test_curriculum_puts_easy_prompts_first(self):
        two = pl.concat([SAMPLES, SAMPLES.with_columns(prompt_id=pl.lit("q"), sample_id=pl.lit("q-") + pl.col("sample_index").cast(pl.String))])
        votes = pl.DataFrame({"prompt_id": ["p", "q"], "difficulty": ["hard", "easy"]})
        out = build_pairs(two, _prompts(("p", REFERENCE, "18"), ("q", REFERENCE, "18")),
                          cfg=PairsConfig(strategy="all_ranked", max_pairs_per_prompt=1), votes=votes)
        ranked = out.sort("curriculum_rank").select("prompt_id", "difficulty").rows()
        assert ranked == [("q", "easy"), ("p", "hard")]

    def test_no_margin_when_all_tie(self):
        out = build_pairs(SAMPLES.with_columns(correct=pl.lit(True)), PROMPTS, cfg=PairsConfig(strategy="all_ranked"))
        assert out.select("keep", "drop_reason").rows() == [(False, "no_margin")]


class TestSpin:
    def test_reference_vs_most_confident_own_sample_even_if_correct(self):
        out = build_pairs(SAMPLES, PROMPTS, cfg=PairsConfig(strategy="spin"))
        assert out.select("chosen_source", "chosen_engine", "rejected_sample_id").rows() == [("reference", "reference", "p-3")]
        assert out["chosen"][0][0]["content"] == "She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.\n#### 18"

    def test_without_reference_dropped(self):
        out = build_pairs(SAMPLES, _prompts(("p", None, None)), cfg=PairsConfig(strategy="spin"))
        assert out.select("keep", "drop_reason").rows() == [(False, "no_reference")]


class TestAnchored:
    def test_rejected_comes_from_parent_version(self):
        parent = _verified([
            {"prompt_id": "p", "sample_index": 0, "correct": False, "mean_logprob": -0.3, "engine": "old-model"},
            {"prompt_id": "p", "sample_index": 1, "correct": True, "mean_logprob": -0.3, "engine": "old-model"},
        ])
        out = build_pairs(SAMPLES, PROMPTS, cfg=PairsConfig(strategy="anchored"), parent_samples=parent,
                          parent_version="v0001")
        row = out.to_dicts()[0]
        assert (row["chosen_sample_id"], row["rejected_sample_id"], row["rejected_version"], row["rejected_engine"],
                row["chosen_version"], row["margin"]) == ("p-3", "p-0", "v0001", "old-model", None, 1.0)

    def test_without_parent_dropped(self):
        out = build_pairs(SAMPLES, PROMPTS, cfg=PairsConfig(strategy="anchored"))
        assert out.select("keep", "drop_reason").rows() == [(False, "no_parent_sample")]


class TestFutureGuidedChosen:
    """Temporal Self-Rewarding: the future model's best sample replaces chosen only when it scores higher."""

    PARENT = _verified([{"prompt_id": "p", "sample_index": 0, "correct": False, "mean_logprob": -0.3, "engine": "old"}])
    JUDGED = SAMPLES.with_columns(judge_score=pl.Series([6.0, 2.0, 3.0, 7.0]))  # best current: p-3, 7
    CFG = PairsConfig(strategy="anchored", judge_weight=0.5, future_version="v0003")

    def _future(self, scores: list[float], correct: list[bool]) -> pl.DataFrame:
        rows = [{"prompt_id": "p", "sample_index": i, "correct": c, "mean_logprob": -0.4, "engine": "future"}
                for i, c in enumerate(correct)]
        return _verified(rows).with_columns(judge_score=pl.Series(scores))

    def _pair(self, future: pl.DataFrame) -> tuple:
        out = build_pairs(self.JUDGED, PROMPTS, parent_samples=self.PARENT, future_samples=future, cfg=self.CFG,
                          parent_version="v0001", future_version="v0003")
        return out.select("chosen_source", "chosen_sample_id", "chosen_version", "chosen_engine",
                          "rejected_version", "margin").row(0)

    def test_a_better_future_sample_is_chosen(self):
        # future p-1: correct, judge 10 -> 0.5 + 0.5 = 1.0 beats current p-3: 0.5 + 0.5 * 6/9
        assert self._pair(self._future([4.0, 10.0], [True, True])) == ("future", "p-1", "v0003", "future", "v0001", 1.0)

    def test_a_tie_or_worse_keeps_this_iterations_chosen(self):
        assert self._pair(self._future([7.0], [True]))[:3] == ("sample", "p-3", None)
        assert self._pair(self._future([10.0], [False]))[:3] == ("sample", "p-3", None)

    def test_no_future_samples_for_a_prompt_keeps_chosen(self):
        assert self._pair(self._future([], []).head(0))[:2] == ("sample", "p-3")

    def test_with_the_judge_off_future_samples_are_scored_by_the_verifier_alone(self):
        # published future samples carry their own run's judge scores; this run's samples have none
        # (an incorrect future sample with a high old judge score must not become chosen)
        future = self._future([10.0, 1.0], [False, False])
        cfg = PairsConfig(strategy="anchored", judge_weight=0.5, future_version="v0003", reference_as_chosen=False)
        out = build_pairs(SAMPLES.with_columns(correct=pl.lit(False)), PROMPTS, parent_samples=self.PARENT,
                          future_samples=future, cfg=cfg, parent_version="v0001", future_version="v0003")
        assert out.select("keep", "drop_reason", "chosen_source").row(0) == (False, "no_correct_sample", None)

    def test_only_with_anchored(self):
        with pytest.raises(ValueError, match="strategy 'anchored'"):
            PairsConfig(strategy="best_worst", future_version="v0003")


class TestCurry:
    """Curry-DPO: the best response against each lower-ranked one, easy (wide margin) to hard."""

    # scores with judge_weight 0.5 (verifier 0.5, judge 0.5 * (score - 1) / 9):
    # p-0 correct, 10 -> 1.0; p-1 wrong, 1 -> 0.0; p-2 wrong, 4 -> 1/6; p-3 correct, 7 -> 0.5 + 1/3
    JUDGED = SAMPLES.with_columns(judge_score=pl.Series([10.0, 1.0, 4.0, 7.0]))
    CFG = PairsConfig(strategy="curry", judge_weight=0.5)

    def test_best_against_each_lower_ranked_widest_margin_first(self):
        out = build_pairs(self.JUDGED, PROMPTS, cfg=self.CFG)
        # ranked: p-0 (1.0) > p-3 (0.8333) > p-2 (0.1667) > p-1 (0.0)
        assert [(c, r, round(m, 4)) for c, r, m in _pairs(out)] == [
            ("p-0", "p-1", 1.0), ("p-0", "p-2", 0.8333), ("p-0", "p-3", 0.1667),
        ]
        assert out["curriculum_rank"].to_list() == [0, 1, 2]
        assert set(out["strategy"]) == {"curry"}

    def test_ties_with_the_best_are_no_pair_and_the_cap_keeps_the_easiest(self):
        out = build_pairs(SAMPLES, PROMPTS, cfg=PairsConfig(strategy="curry", max_pairs_per_prompt=1))
        # p-3 and p-0 both score 1: p-3 is best (surer), p-0 ties with it; the easiest pair is against p-1
        assert _pairs(out) == [("p-3", "p-1", 1.0)]

    def test_curriculum_order_across_prompts_is_the_row_order(self):
        q = self.JUDGED.with_columns(prompt_id=pl.lit("q"), sample_id=pl.lit("q-") + pl.col("sample_index").cast(pl.String),
                                     judge_score=pl.Series([10.0, 9.0, 1.0, 1.0]))
        prompts = _prompts(("p", REFERENCE, "18"), ("q", REFERENCE, "18"))
        out = build_pairs(pl.concat([self.JUDGED, q]), prompts, cfg=self.CFG.model_copy(update={"curriculum": True}))
        # q: q-0 (1.0) > q-3 (correct, 1 -> 0.5) > q-1 (wrong, 9 -> 0.4444) > q-2 (0.0); one order by
        # margin across prompts, ties in prompt order
        assert [(c, r, round(m, 4)) for c, r, m in _pairs(out)] == [
            ("p-0", "p-1", 1.0), ("q-0", "q-2", 1.0), ("p-0", "p-2", 0.8333), ("q-0", "q-1", 0.5556),
            ("q-0", "q-3", 0.5), ("p-0", "p-3", 0.1667),
        ]
        assert out["curriculum_rank"].to_list() == list(range(6))

    def test_without_curriculum_rows_stay_in_prompt_order(self):
        q = self.JUDGED.with_columns(prompt_id=pl.lit("q"), sample_id=pl.lit("q-") + pl.col("sample_index").cast(pl.String))
        prompts = _prompts(("q", REFERENCE, "18"), ("p", REFERENCE, "18"))
        out = build_pairs(pl.concat([self.JUDGED, q]), prompts, cfg=self.CFG.model_copy(update={"curriculum": False}))
        assert out["prompt_id"].to_list() == ["q"] * 3 + ["p"] * 3
        assert out["curriculum_rank"].to_list() == [0, 2, 4, 1, 3, 5]
