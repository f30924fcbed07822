"""tasks/consistency.py: votes over math-verify equivalence classes, ties, labels without references."""

from __future__ import annotations

import polars as pl

from prefmill.config import VoteConfig
from prefmill.tasks.sampling.consistency import answer_classes, difficulty, vote


def _samples(prompt_id: str, answers: list, logprobs: list, *, reference: str | None = "18") -> pl.DataFrame:
    n = len(answers)
    correct = [a is not None and reference is not None and float(eval(a)) == float(reference) for a in answers]
    return pl.DataFrame(
        {
            "prompt_id": [prompt_id] * n,
            "sample_id": [f"{prompt_id}-{i}" for i in range(n)],
            "extracted": answers,
            "mean_logprob": logprobs,
            "reference_answer": [reference] * n,
            "correct": correct if reference is not None else [False] * n,
            "verify_error": [None if a is not None and reference is not None else
                             ("no_answer_found" if a is None else "no_reference") for a in answers],
        },
        schema_overrides={"extracted": pl.String, "reference_answer": pl.String, "verify_error": pl.String},
    )


class TestAnswerClasses:
    def test_equivalent_forms_share_a_class(self):
        assert answer_classes(["18", "18.0", "36/2", "7", None, "7.00"]) == [0, 0, 0, 1, None, 1]

    def test_empty(self):
        assert answer_classes([]) == []


class TestVote:
    def test_majority_weighted_and_pass_rate(self):
        frame = _samples("a", ["18", "18.0", "7", "7", "7"], [-2.0, -2.0, -3.0, -3.0, -3.0])
        samples, votes = vote(frame, cfg=VoteConfig())
        row = votes.to_dicts()[0]
        assert (row["majority_answer"], row["vote_share"], row["n_classes"], row["pass_rate"]) == ("7", 0.6, 2, 0.4)
        # exp(-2)*2 = 0.271 > exp(-3)*3 = 0.149: the confident minority wins the weighted vote.
        assert row["weighted_answer"] == "18"
        assert round(row["weighted_share"], 3) == round(2 * 2.718281828 ** -2 / (2 * 2.718281828 ** -2 + 3 * 2.718281828 ** -3), 3)
        assert (row["label_source"], row["label_confidence"], row["difficulty"]) == ("reference", 1.0, "medium")
        assert samples["in_majority"].to_list() == [False, False, True, True, True]
        assert samples["class_share"].to_list() == [0.4, 0.4, 0.6, 0.6, 0.6]

    def test_tie_goes_to_heavier_class_then_first_seen(self):
        _, heavier = vote(_samples("a", ["5", "6"], [-1.0, -0.1]), cfg=VoteConfig())
        _, equal = vote(_samples("a", ["5", "6"], [-1.0, -1.0]), cfg=VoteConfig())
        assert heavier["majority_answer"].to_list() == ["6"]
        assert equal["majority_answer"].to_list() == ["5"]

    def test_without_reference_label_comes_from_vote(self):
        frame = _samples("b", ["3", "3", "4", None], [-1.0, -1.0, -0.5, -0.5], reference=None)
        samples, votes = vote(frame, cfg=VoteConfig())
        assert samples["correct"].to_list() == [True, True, False, False]
        row = votes.to_dicts()[0]
        assert (row["label_source"], row["label_confidence"], row["pass_rate"], row["n_answered"]) == ("vote", 0.5, None, 3)

    def test_no_answers_at_all(self):
        samples, votes = vote(_samples("c", [None, None], [-1.0, -1.0]), cfg=VoteConfig())
        row = votes.to_dicts()[0]
        assert (row["majority_answer"], row["vote_share"], row["difficulty"]) == (None, 0.0, "unsolved")
        assert samples["answer_class"].to_list() == [None, None]


class TestDifficulty:
    def test_bands(self):
        cfg = VoteConfig(easy_at=0.75, hard_below=0.25)
        assert [difficulty(r, cfg=cfg) for r in (0.0, 0.1, 0.25, 0.5, 0.75, 1.0, None)] == [
            "unsolved", "hard", "medium", "medium", "easy", "easy", None
        ]
