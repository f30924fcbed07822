"""tasks/preference/cream.py: CREAM ranks THIS iteration's responses by the previous iteration's judge and
by the current one, Kendall tau per prompt over the same responses, C = (tau + 1) / 2."""

from __future__ import annotations

import random

import polars as pl
import pytest

from prefmill.config import FiltersConfig, JudgeConfig
from prefmill.engines.scripted import ScriptedEngine, gsm8k_judge_policy
from prefmill.tasks.preference.cream import cream_consistency, kendall_tau, score_shared_responses
from prefmill.tasks.preference.filters import apply_filters


def independent(policy, salt: str):
    """`policy` with randomness of its own: two scripted judges asked the same request draw from the
    request and its seed, so without a salt two 'independent' random judges would answer alike."""
    def salted(request, index, rng):
        return policy(request, index, random.Random(f"{salt}|{rng.random()}"))
    return salted


def judge(p_noise: float, salt: str) -> ScriptedEngine:
    return ScriptedEngine(independent(gsm8k_judge_policy(REFERENCES, p_noise=p_noise), salt), name=f"judge-{salt}")


N_PROMPTS = 60
REFERENCES = {f"Question number {i}?": f"Add them.\n#### {i}" for i in range(N_PROMPTS)}


def _samples(prompts: range, *, n: int = 4, seed: int = 0) -> pl.DataFrame:
    """n samples per prompt, about half of them right (so a judge has something to rank)."""
    rng = random.Random(seed)
    rows = []
    for i in prompts:
        for k in range(n):
            right = rng.random() < 0.5
            rows.append({"sample_id": f"q{i}-{k}", "prompt_id": f"q{i}", "sample_index": k,
                         "prompt": [{"role": "user", "content": f"Question number {i}?"}],
                         "completion": f"Steps {k}.\n#### {i if right else i + 1 + k}", "error": None})
    return pl.DataFrame(rows)


def _pairs(prompts: range) -> pl.DataFrame:
    ids = [f"q{i}" for i in prompts]
    return pl.DataFrame({
        "pair_id": [f"{p}-pair" for p in ids], "prompt_id": ids, "keep": [True] * len(ids),
        "drop_reason": pl.Series([None] * len(ids), dtype=pl.String), "chosen_score": [1.0] * len(ids),
        "rejected_score": [0.0] * len(ids), "weight": [1.0] * len(ids), "label_smoothing": [0.0] * len(ids),
        "margin": [1.0] * len(ids), "difficulty": pl.Series([None] * len(ids), dtype=pl.String),
    })


class TestKendallTau:
    @pytest.mark.parametrize(("xs", "ys", "tau"), [
        ([1, 2, 3], [1, 2, 3], 1.0), ([1, 2, 3], [3, 2, 1], -1.0), ([1, 2, 3], [1, 3, 2], 1 / 3),
        ([1], [1], None), ([1, 1], [2, 3], None),
        # tau-b: a pair tied in one ranking only is no agreement (Goodman-Kruskal gamma would say 1.0)
        ([1, 1, 2], [1, 2, 3], 2 / 6 ** 0.5),
    ])
    def test_tau_b(self, xs, ys, tau):
        got = kendall_tau(xs, ys)
        assert got is None if tau is None else got == pytest.approx(tau)


class TestScoreSharedResponses:
    def test_both_judges_score_this_iterations_responses_on_shared_prompts_in_one_call_each(self):
        samples, previous = _samples(range(4)), _samples(range(2, 8), seed=1)
        old, new = judge(0.0, "old"), judge(0.0, "new")
        current, earlier = score_shared_responses(samples, previous, previous_judge=old, current_judge=new,
                                                  cfg=JudgeConfig())
        shared = samples.filter(pl.col("prompt_id").is_in(["q2", "q3"]))["sample_id"].to_list()
        assert current["sample_id"].to_list() == earlier["sample_id"].to_list() == shared  # the SAME responses
        assert (old.calls, old.requests_seen, new.calls, new.requests_seen) == (1, 8, 1, 8)
        assert set(earlier["judge_engine"]) == {"scripted:judge-old"}

    def test_nothing_shared_sends_nothing(self):
        old, new = judge(0.0, "old"), judge(0.0, "new")
        current, earlier = score_shared_responses(_samples(range(2)), _samples(range(5, 6)), previous_judge=old,
                                                  current_judge=new, cfg=JudgeConfig())
        assert (current.height, earlier.height, old.calls, new.calls) == (0, 0, 0, 0)


def _consistency(p_old: float, p_new: float, *, salts=("old", "new"), prompts=range(N_PROMPTS)) -> pl.DataFrame:
    samples = _samples(prompts)
    current, earlier = score_shared_responses(samples, samples, previous_judge=judge(p_old, salts[0]),
                                              current_judge=judge(p_new, salts[1]), cfg=JudgeConfig())
    return cream_consistency(samples, current, earlier)


class TestCreamConsistency:
    def test_tau_over_the_same_responses_and_the_consistency_rate(self):
        samples = _samples(range(1))
        current = pl.DataFrame({"sample_id": ["q0-0", "q0-1", "q0-2"], "judge_score": [9.0, 2.0, 5.0],
                                "judge_engine": ["new"] * 3})
        earlier = pl.DataFrame({"sample_id": ["q0-0", "q0-1", "q0-2"], "judge_score": [8.0, 3.0, 1.0],
                                "judge_engine": ["old"] * 3})
        row = cream_consistency(samples, current, earlier).row(0, named=True)
        assert row["cream_tau"] == pytest.approx(1 / 3) and row["cream_consistency"] == pytest.approx(2 / 3)
        assert (row["cream_status"], row["cream_judge"]) == ("scored", "old")

    def test_unscored_responses_left_out_and_all_tied_is_undefined(self):
        samples = _samples(range(1))
        current = pl.DataFrame({"sample_id": ["q0-0", "q0-1", "q0-2"], "judge_score": [9.0, 9.0, None],
                                "judge_engine": ["new"] * 3})
        earlier = pl.DataFrame({"sample_id": ["q0-0", "q0-1", "q0-2"], "judge_score": [8.0, 3.0, 1.0],
                                "judge_engine": ["old"] * 3})
        row = cream_consistency(samples, current, earlier).row(0, named=True)
        assert (row["cream_tau"], row["cream_consistency"], row["cream_status"]) == (None, None, "undefined")

    def test_the_same_judge_is_no_evidence(self):
        samples = _samples(range(2))
        scores = pl.DataFrame({"sample_id": samples["sample_id"], "judge_score": [9.0, 2.0, 5.0, 1.0] * 2,
                               "judge_engine": ["same"] * 8})
        out = cream_consistency(samples, scores, scores)
        assert set(out["cream_status"]) == {"same_judge"} and out["cream_consistency"].null_count() == 2

    def test_agreeing_judges_are_consistent_random_ones_are_not(self):
        agree = _consistency(0.1, 0.1)
        random_ = _consistency(1.0, 1.0)
        mean = lambda f: f.filter(pl.col("cream_status") == "scored")["cream_consistency"].mean()  # noqa: E731
        print(f"mean CREAM consistency rate: agreeing judges {mean(agree):.3f}, random judges {mean(random_):.3f}")
        assert mean(agree) > 0.8 and 0.35 < mean(random_) < 0.65


class TestCreamFilter:
    def _drop_rate(self, consistency: pl.DataFrame, cfg: FiltersConfig) -> float:
        out = apply_filters(_pairs(range(N_PROMPTS)), cfg=cfg, consistency=consistency, cream_version="v0001")
        scored = out.filter(pl.col("cream_status") == "scored")
        return (scored["drop_reason"] == "cream_inconsistent").fill_null(False).mean()

    def test_drop_separates_agreeing_from_random_judges(self):
        cfg = FiltersConfig(cream="drop")
        agree, random_ = self._drop_rate(_consistency(0.1, 0.1), cfg), self._drop_rate(_consistency(1.0, 1.0), cfg)
        print(f"CREAM drop rate, default threshold: agreeing judges {agree:.2f}, random judges {random_:.2f}")
        assert agree <= 0.1 and random_ >= 0.4

    def test_weight_and_label_smoothing_from_the_consistency_rate(self):
        consistency = pl.DataFrame({"prompt_id": ["q0", "q1"], "cream_tau": [1.0, -0.5],
                                    "cream_consistency": [1.0, 0.25], "cream_status": ["scored", "scored"],
                                    "cream_judge": ["old", "old"]})
        out = apply_filters(_pairs(range(3)), cfg=FiltersConfig(cream="weight"), consistency=consistency,
                            cream_version="v0001")
        assert out.select("weight", "label_smoothing", "cream_status", "keep").rows() == [
            (1.0, 0.0, "scored", True), (0.25, 0.75, "scored", True), (1.0, 0.0, "not_shared", True),
        ]
        assert out["cream_version"].to_list() == ["v0001"] * 3

    def test_drop_below_min_consistency(self):
        consistency = pl.DataFrame({"prompt_id": ["q0", "q1"], "cream_tau": [0.0, -0.5],
                                    "cream_consistency": [0.5, 0.25], "cream_status": ["scored", "scored"],
                                    "cream_judge": ["old", "old"]})
        out = apply_filters(_pairs(range(2)), cfg=FiltersConfig(cream="drop", cream_min_consistency=0.5),
                            consistency=consistency, cream_version="v0001")
        assert out.select("keep", "drop_reason", "weight").rows() == [(True, None, 1.0), (False, "cream_inconsistent", 1.0)]

    def test_no_previous_iteration_does_nothing_and_says_so(self):
        out = apply_filters(_pairs(range(2)), cfg=FiltersConfig(cream="drop"))
        assert out.select("keep", "weight", "cream_status").rows() == [(True, 1.0, "no_previous_iteration")] * 2

    def test_off_leaves_no_status(self):
        out = apply_filters(_pairs(range(1)), cfg=FiltersConfig())
        assert out.select("cream_status", "cream_consistency", "weight").rows() == [(None, None, 1.0)]
