"""tasks/rise/steps.py: RISE step pairs differ from their chosen side only in the edited step; and the
whole-solution RISE pairs' `sides_changed_share`, measured between what they publish."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from prefmill.config import RiseConfig
from prefmill.schemas.tables import FILTERED_PAIRS, PAIRS, RISE_STEPS
from prefmill.schemas.validate import conform
from prefmill.tasks.rise import edit_checks
from prefmill.tasks.rise import inject as rise
from prefmill.tasks.rise import pairs as rise_pairs
from prefmill.tasks.rise import steps as rise_steps
from tests.tasks.rise.test_rise import SOLUTION, VERIFY, _editor, _samples_and_prompts

FIRST = "She sells 16 - 3 - 4 = 9 eggs.\n"


def _llm_edits(**cfg) -> pl.DataFrame:
    samples, prompts = _samples_and_prompts()
    cfg = {"edits_per_solution": 3, "max_changed_share": 1.0} | cfg
    return rise.inject(samples, prompts, engine=_editor(), cfg=RiseConfig(**cfg), verify_cfg=VERIFY)


def _differ_only_at_spans(row: dict) -> None:
    chosen, rejected = row["chosen"][0]["content"], row["rejected"][0]["content"]
    sc, sr = row["edit_span_chosen"], row["edit_span_rejected"]
    assert chosen.startswith(row["prefix"]) and rejected.startswith(row["prefix"])
    assert len(row["prefix"]) <= sc["start"] == sr["start"]
    assert chosen[: sc["start"]] == rejected[: sr["start"]] and chosen[sc["end"] :] == rejected[sr["end"] :]
    assert chosen[sc["start"] : sc["end"]] != rejected[sr["start"] : sr["end"]]


class TestStepPairs:
    def test_a_step_pair_differs_only_in_the_edited_words(self):
        edits = _llm_edits()
        table = conform(rise_steps.rise_steps(edits), RISE_STEPS, where="rise_steps")

        rows = table.to_pylist()
        assert len(rows) == int(edits["keep"].sum()) == 3
        for row, edit in zip(rows, edits.filter(pl.col("keep")).iter_rows(named=True)):
            _differ_only_at_spans(row)
            start = SOLUTION.index(edit["original_step"])
            assert row["prefix"] == SOLUTION[:start] and row["edited_step"] == edit["step_index"]
            assert row["chosen"] == [{"role": "assistant", "content": SOLUTION[:start] + edit["original_step"]}]
            assert row["rejected"] == [{"role": "assistant", "content": SOLUTION[:start] + edit["edited_step"]}]
            assert row["prompt"] == edit["prompt"] and row["prompt"][-1]["role"] == "user"  # no assistant turn
            assert (row["pair_id"], row["error_type"], row["editor"], row["source"], row["chosen_sample_id"]) == (
                edit["edit_id"], edit["error_type"], "llm", "sample", edit["sample_id"])
            # the whole-solution rejected side goes on past the step ("So she makes $27. #### 27"); this one stops
            assert edit["rejected_text"].startswith(row["rejected"][0]["content"])
            assert len(edit["rejected_text"]) > len(row["rejected"][0]["content"])

    def test_a_one_number_edit_of_the_second_step(self):
        edits = rise.inject(*_samples_and_prompts(), engine=None, cfg=RiseConfig(editor="rules"), verify_cfg=VERIFY)
        edit = edits.row(0, named=True)
        frame = edits.with_columns(step_index=pl.lit(1, pl.Int32), original_step=pl.lit("She makes 9 * 2 = $18."),
                                   edited_step=pl.lit("She makes 9 * 3 = $27."))

        (row,) = rise_steps.rise_steps(frame).to_dicts()

        chosen, rejected = row["chosen"][0]["content"], row["rejected"][0]["content"]
        assert row["prefix"] == FIRST and chosen == FIRST + "She makes 9 * 2 = $18."
        assert chosen[row["edit_span_chosen"]["start"] : row["edit_span_chosen"]["end"]] == "2 = $18"
        assert rejected[row["edit_span_rejected"]["start"] : row["edit_span_rejected"]["end"]] == "3 = $27"
        assert row["changed_share"] == edit_checks.changed_share(chosen, rejected) < edit_checks.changed_share(
            "She makes 9 * 2 = $18.", "She makes 9 * 3 = $27.")  # prefix included
        assert row["source"] == edit["source"] and row["editor"] == "rules"

    def test_the_first_step_has_an_empty_prefix(self):
        edits = rise.inject(*_samples_and_prompts(), engine=None, cfg=RiseConfig(editor="rules"), verify_cfg=VERIFY)
        frame = edits.with_columns(step_index=pl.lit(0, pl.Int32), original_step=pl.lit(FIRST.strip()),
                                   edited_step=pl.lit("She sells 16 - 3 - 5 = 8 eggs."))

        (row,) = rise_steps.rise_steps(frame).to_dicts()

        assert row["prefix"] == "" and row["chosen"][0]["content"] == FIRST.strip()
        _differ_only_at_spans(row)

    def test_dropped_edits_make_no_step_pair_and_none_kept_is_an_empty_table(self):
        edits = _llm_edits()
        none_kept = edits.with_columns(keep=pl.lit(False))

        assert rise_steps.rise_steps(none_kept).height == 0
        assert conform(rise_steps.rise_steps(none_kept), RISE_STEPS, where="t").schema == RISE_STEPS
        assert rise_steps.rise_step_stats(rise_steps.rise_steps(none_kept)) == {"rows": 0, "by_error_type": {}, "by_editor": {}}

    def test_a_step_that_is_not_the_edits_original_is_refused(self):
        frame = _llm_edits().with_columns(original_step=pl.lit("She makes 9 * 2 = $19."))

        with pytest.raises(ValueError, match="not its original step"):
            rise_steps.rise_steps(frame)

    def test_stats_count_rows_by_error_type(self):
        steps = rise_steps.rise_steps(_llm_edits())

        stats = rise_steps.rise_step_stats(steps)

        assert stats["rows"] == 3 and sum(stats["by_error_type"].values()) == 3 and stats["by_editor"] == {"llm": 3}
        assert set(stats["by_error_type"]) == set(steps["error_type"])


class TestEditSpans:
    @pytest.mark.parametrize(
        ("chosen", "rejected", "want_chosen", "want_rejected"),
        [("She makes 9 * 2 = $18.", "She makes 9 * 3 = $27.", "2 = $18", "3 = $27"),
         ("He has 18 apples.", "He has 13 apples.", "18", "13"),  # the whole number, not its last digit
         ("He has 18 apples.", "He has 185 apples.", "18", "185"),
         ("Add 2 + 3 = 5.", "Add 2  +  3 = 5.", "+", " + "),  # whitespace counts: outside the span all is equal
         ("It takes 2 hours.", "It takes 2 minutes.", "hours", "minutes"),
         ("same", "same", "", "")],
    )
    def test_spans_cover_the_changed_words(self, chosen, rejected, want_chosen, want_rejected):
        c, r = edit_checks.edit_spans(chosen, rejected)
        assert (chosen[c["start"] : c["end"]], rejected[r["start"] : r["end"]]) == (want_chosen, want_rejected)

    @given(st.text(alphabet="ab 12+=.,$\n", max_size=30), st.text(alphabet="ab 12+=.,$\n", max_size=30))
    def test_outside_the_spans_the_texts_are_equal(self, chosen, rejected):
        c, r = edit_checks.edit_spans(chosen, rejected)
        assert c["start"] == r["start"] and len(chosen) - c["end"] == len(rejected) - r["end"]
        assert 0 <= c["start"] <= c["end"] <= len(chosen) and r["end"] <= len(rejected)
        assert chosen[: c["start"]] == rejected[: r["start"]] and chosen[c["end"] :] == rejected[r["end"] :]
        assert (chosen == rejected) == (c["start"] == c["end"] and r["start"] == r["end"])


class TestSidesChangedShare:
    def test_whole_solution_pairs_measure_both_published_sides(self):
        edits = _llm_edits()
        pairs = rise_pairs.rise_pairs(edits)

        for row in pairs.iter_rows(named=True):
            chosen, rejected = row["chosen"][0]["content"], row["rejected"][0]["content"]
            assert row["sides_changed_share"] == edit_checks.changed_share(chosen, rejected)
            # the regenerated tail ("So she makes $27.") counts between the sides, not in the step's share
            assert row["sides_changed_share"] != row["changed_share"]

    def test_the_version_measures_it_on_pairs_the_stages_passed_on(self):
        pairs = rise_pairs.rise_pairs(_llm_edits())
        sampled = pairs.head(1).with_columns(strategy=pl.lit("verified_vs_incorrect"), pair_id=pl.lit("s"))
        passed = pl.from_arrow(conform(pl.concat([sampled, pairs], how="diagonal_relaxed"), FILTERED_PAIRS,
                                       where="mixed", fill_nullable=True))
        assert "sides_changed_share" not in passed.columns

        published = conform(rise_pairs.with_rise_columns(passed), PAIRS, where="pairs").to_pylist()

        assert published[0]["sides_changed_share"] is None  # a sampled pair
        assert [r["sides_changed_share"] for r in published[1:]] == pairs["sides_changed_share"].to_list()


def test_trl_renders_the_step_right_after_the_prefix():
    """The schema's convention, through TRL's own chat templating: no end-of-turn between prefix and step."""
    tokenizers = pytest.importorskip("tokenizers")
    fast = pytest.importorskip("transformers").PreTrainedTokenizerFast
    apply_chat_template = pytest.importorskip("trl.data_utils").apply_chat_template
    words = tokenizers.Tokenizer(tokenizers.models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer = fast(tokenizer_object=words, unk_token="[UNK]")
    tokenizer.chat_template = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
                               "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    row = next(r for r in rise_steps.rise_steps(_llm_edits()).iter_rows(named=True) if r["prefix"])

    rendered = apply_chat_template({k: row[k] for k in ("prompt", "chosen", "rejected")}, tokenizer)

    assert rendered["prompt"].endswith(row["prompt"][-1]["content"] + "<|im_end|>\n<|im_start|>assistant\n")
    assert rendered["chosen"] == row["chosen"][0]["content"] + "<|im_end|>\n"
    assert rendered["rejected"] == row["rejected"][0]["content"] + "<|im_end|>\n"
    assert rendered["chosen"].startswith(row["prefix"]) and rendered["rejected"].startswith(row["prefix"])
