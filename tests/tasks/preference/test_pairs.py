"""tasks/pairs.py: one chosen/rejected pair per prompt, or the reason there is none."""

from __future__ import annotations

import polars as pl
import pytest

from prefmill.config import PairsConfig
from prefmill.schemas.tables import PAIRS
from prefmill.schemas.tables import VERIFIED
from prefmill.schemas.validate import conform, polars_schema
from prefmill.tasks.preference.pairs import build_pairs, reference_as_solution

REFERENCE = "She sells 16 - 3 - 4 = <<16-3-4=9>>9 eggs.\nShe makes 9 * 2 = $<<9*2=18>>18.\n#### 18"
PROMPT = [{"role": "user", "content": "How much does she make?"}]


def _prompts(*rows: tuple[str, str | None, str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"prompt_id": p, "question": f"q {p}", "reference": r, "reference_answer": a, "source_row": i}
         for i, (p, r, a) in enumerate(rows)],
        schema={"prompt_id": pl.String, "question": pl.String, "reference": pl.String,
                "reference_answer": pl.String, "source_row": pl.Int64},
    )


def _verified(rows: list[dict]) -> pl.DataFrame:
    """Verified samples: generate's columns plus verify's; each row gives prompt_id, sample_index, correct."""
    full = []
    for r in rows:
        row = {
            "prompt": PROMPT, "seed": 1, "engine": "scripted:test", "num_tokens": 4, "finish_reason": "stop",
            "error": None, "reference_answer": "18", "verify_error": None,
            "completion": f"text {r['prompt_id']}-{r['sample_index']}",
            "extracted": "18" if r["correct"] else "17", "mean_logprob": -1.0,
        } | r
        row["sample_id"] = f"{row['prompt_id']}-{row['sample_index']}"
        full.append(row)
    return pl.DataFrame(full, schema=polars_schema(VERIFIED))


def _row(frame: pl.DataFrame, prompt_id: str) -> dict:
    (row,) = frame.filter(pl.col("prompt_id") == prompt_id).to_dicts()
    return row


class TestReferenceAsSolution:
    def test_strips_calculator_annotations(self):
        assert reference_as_solution(REFERENCE) == "She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.\n#### 18"

    def test_bare_answer_unchanged(self):
        assert reference_as_solution(" 18 ") == "18"


class TestBuildPairs:
    def test_chosen_highest_logprob_correct_rejected_most_confident_incorrect(self):
        samples = _verified([
            {"prompt_id": "p", "sample_index": 0, "correct": True, "mean_logprob": -0.9},
            {"prompt_id": "p", "sample_index": 1, "correct": True, "mean_logprob": -0.2},
            {"prompt_id": "p", "sample_index": 2, "correct": False, "mean_logprob": -1.5},
            {"prompt_id": "p", "sample_index": 3, "correct": False, "mean_logprob": -0.4},
            {"prompt_id": "p", "sample_index": 4, "correct": False, "mean_logprob": -3.0},
        ])

        out = build_pairs(samples, _prompts(("p", REFERENCE, "18")), cfg=PairsConfig())

        filter_columns = {"judge_prefers", "judge_agreement", "swap_consistent", "cream_consistency", "cream_tau"}
        filter_columns |= {"scir_pointwise", "scir_pairwise", "scir_verifier", "scir_agreement"}
        filter_columns |= {"error_type", "edited_step", "edit_span", "edit_diff", "changed_share",  # RISE pairs only
                           "sides_changed_share"}
        assert {"keep", "drop_reason"} | (set(PAIRS.names) - filter_columns) <= set(out.columns)
        row = _row(out, "p")
        assert {k: row[k] for k in (
            "prompt_id", "keep", "drop_reason", "prompt", "chosen", "rejected", "strategy", "chosen_source",
            "chosen_sample_id", "rejected_sample_id", "chosen_answer", "rejected_answer", "reference_answer",
            "chosen_logprob", "rejected_logprob", "chosen_engine", "rejected_engine", "chosen_score",
            "rejected_score", "margin", "chosen_version", "rejected_version", "weight", "curriculum_rank",
            "label_smoothing", "chosen_correct", "rejected_correct", "chosen_judge_score",
        )} == {
            "prompt_id": "p",
            "keep": True,
            "drop_reason": None,
            "prompt": PROMPT,
            "chosen": [{"role": "assistant", "content": "text p-1"}],
            "rejected": [{"role": "assistant", "content": "text p-3"}],
            "strategy": "verified_vs_incorrect",
            "chosen_source": "sample",
            "chosen_sample_id": "p-1",
            "rejected_sample_id": "p-3",
            "chosen_answer": "18",
            "rejected_answer": "17",
            "reference_answer": "18",
            "chosen_logprob": -0.2,
            "rejected_logprob": -0.4,
            "chosen_engine": "scripted:test",
            "rejected_engine": "scripted:test",
            "chosen_score": 1.0,
            "rejected_score": 0.0,
            "margin": 1.0,
            "chosen_version": None,
            "rejected_version": None,
            "weight": 1.0,
            "label_smoothing": 0.0,
            "curriculum_rank": 0,
            "chosen_correct": True,
            "rejected_correct": False,
            "chosen_judge_score": None,  # no pointwise judge
        }

    def test_rejected_least_confident(self):
        samples = _verified([
            {"prompt_id": "p", "sample_index": 0, "correct": True},
            {"prompt_id": "p", "sample_index": 1, "correct": False, "mean_logprob": -1.5},
            {"prompt_id": "p", "sample_index": 2, "correct": False, "mean_logprob": -0.4},
            {"prompt_id": "p", "sample_index": 3, "correct": False, "mean_logprob": -3.0},
        ])

        out = build_pairs(samples, _prompts(("p", REFERENCE, "18")), cfg=PairsConfig(rejected="least_confident"))

        assert (_row(out, "p")["rejected_sample_id"], _row(out, "p")["rejected_logprob"]) == ("p-3", -3.0)

    def test_logprob_ties_take_the_lowest_sample_index(self):
        samples = _verified([
            {"prompt_id": "p", "sample_index": 2, "correct": True, "mean_logprob": -0.5},
            {"prompt_id": "p", "sample_index": 1, "correct": True, "mean_logprob": -0.5},
            {"prompt_id": "p", "sample_index": 3, "correct": False, "mean_logprob": -1.0},
        ])
        out = build_pairs(samples, _prompts(("p", REFERENCE, "18")), cfg=PairsConfig())
        assert _row(out, "p")["chosen_sample_id"] == "p-1"

    def test_all_correct_is_dropped(self):
        samples = _verified([
            {"prompt_id": "p", "sample_index": 0, "correct": True},
            {"prompt_id": "p", "sample_index": 1, "correct": True},
        ])

        row = _row(build_pairs(samples, _prompts(("p", REFERENCE, "18")), cfg=PairsConfig()), "p")

        assert (row["keep"], row["drop_reason"], row["rejected_sample_id"]) == (False, "no_incorrect_sample", None)

    def test_no_correct_sample_uses_the_reference_without_annotations(self):
        samples = _verified([
            {"prompt_id": "p", "sample_index": 0, "correct": False, "mean_logprob": -0.3},
            {"prompt_id": "p", "sample_index": 1, "correct": False, "mean_logprob": -0.8},
        ])

        row = _row(build_pairs(samples, _prompts(("p", REFERENCE, "18")), cfg=PairsConfig()), "p")

        assert row["keep"] is True and row["drop_reason"] is None
        assert row["chosen_source"] == "reference"
        assert row["chosen"] == [{"role": "assistant", "content": "She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.\n#### 18"}]
        assert (row["chosen_sample_id"], row["chosen_answer"], row["chosen_logprob"]) == (None, "18", None)
        assert (row["rejected_sample_id"], row["prompt"]) == ("p-0", PROMPT)

    def test_no_correct_sample_without_reference_as_chosen(self):
        samples = _verified([{"prompt_id": "p", "sample_index": 0, "correct": False}])

        row = _row(build_pairs(samples, _prompts(("p", REFERENCE, "18")), cfg=PairsConfig(reference_as_chosen=False)), "p")

        assert (row["keep"], row["drop_reason"], row["chosen_source"]) == (False, "no_correct_sample", None)

    def test_no_correct_sample_and_no_reference(self):
        samples = _verified([{"prompt_id": "p", "sample_index": 0, "correct": False, "verify_error": "no_reference"}])

        row = _row(build_pairs(samples, _prompts(("p", None, None)), cfg=PairsConfig()), "p")

        assert (row["keep"], row["drop_reason"], row["chosen_source"]) == (False, "no_correct_sample", None)

    @pytest.mark.parametrize("strategy", ["most_confident", "least_confident"])
    def test_empty_and_engine_error_samples_are_never_rejected(self, strategy):
        samples = _verified([
            {"prompt_id": "p", "sample_index": 0, "correct": True, "mean_logprob": -1.0},
            {"prompt_id": "p", "sample_index": 1, "correct": False, "completion": "", "mean_logprob": -0.01,
             "verify_error": "empty_completion"},
            {"prompt_id": "p", "sample_index": 2, "correct": False, "completion": "  \n", "mean_logprob": -9.0,
             "verify_error": "empty_completion"},
            {"prompt_id": "p", "sample_index": 3, "correct": False, "completion": "", "mean_logprob": None,
             "finish_reason": "error", "error": "boom", "verify_error": "engine_error"},
        ])

        row = _row(build_pairs(samples, _prompts(("p", REFERENCE, "18")), cfg=PairsConfig(rejected=strategy)), "p")

        assert (row["keep"], row["drop_reason"], row["rejected_sample_id"]) == (False, "no_incorrect_sample", None)

    def test_engine_error_row_marked_correct_is_never_chosen(self):
        samples = _verified([
            {"prompt_id": "p", "sample_index": 0, "correct": True, "error": "boom", "mean_logprob": -0.01},
            {"prompt_id": "p", "sample_index": 1, "correct": False},
        ])
        row = _row(build_pairs(samples, _prompts(("p", REFERENCE, "18")), cfg=PairsConfig()), "p")
        assert row["chosen_source"] == "reference"

    def test_prompt_without_samples_is_dropped(self):
        out = build_pairs(_verified([]), _prompts(("p", REFERENCE, "18")), cfg=PairsConfig())
        assert _row(out, "p")["drop_reason"] == "no_usable_sample"

    def test_one_row_per_prompt_in_prompt_order(self):
        samples = _verified([
            {"prompt_id": "b", "sample_index": 0, "correct": True},
            {"prompt_id": "b", "sample_index": 1, "correct": False},
            {"prompt_id": "a", "sample_index": 0, "correct": True},
        ])
        out = build_pairs(samples, _prompts(("a", "1", "1"), ("b", "2", "2"), ("c", "3", "3")), cfg=PairsConfig())
        assert out.select("prompt_id", "keep", "drop_reason").rows() == [
            ("a", False, "no_incorrect_sample"), ("b", True, None), ("c", False, "no_usable_sample"),
        ]

    def test_kept_rows_conform_to_the_trl_conversational_schema(self):
        samples = _verified([
            {"prompt_id": "a", "sample_index": 0, "correct": True},
            {"prompt_id": "a", "sample_index": 1, "correct": False},
            {"prompt_id": "b", "sample_index": 0, "correct": False},
        ])
        out = build_pairs(samples, _prompts(("a", REFERENCE, "18"), ("b", REFERENCE, "18")), cfg=PairsConfig())

        table = conform(out.filter(pl.col("keep")), PAIRS, where="pairs", fill_nullable=True)

        assert table.num_rows == 2
        for column in ("prompt", "chosen", "rejected"):
            assert str(table.schema.field(column).type) == "list<item: struct<role: string, content: string>>"
        assert [m[0]["role"] for m in table.column("chosen").to_pylist()] == ["assistant", "assistant"]
        assert [m[0]["role"] for m in table.column("rejected").to_pylist()] == ["assistant", "assistant"]
        assert table.column("chosen_source").to_pylist() == ["sample", "reference"]


def test_no_prompts_left_gives_an_empty_pairs_table_not_an_error():
    """Every prompt removed by decontamination: nothing to pair, and the pipeline goes on."""
    from prefmill.config import PairsConfig
    from prefmill.schemas.tables import PAIR_CANDIDATES
    from prefmill.schemas.validate import conform
    from prefmill.tasks.preference.pairs import build_pairs

    out = build_pairs(_verified([]), _prompts(), cfg=PairsConfig())
    assert out.height == 0 and conform(out, PAIR_CANDIDATES, where="pairs", fill_nullable=True).num_rows == 0
