"""tasks/steps.py: step spans by rule, a catalogue of solution shapes and properties over any text."""

from __future__ import annotations

import re

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefmill.tasks.process.steps import RULES, SPAN, annotation_spans, split_steps, steps_frame, steps_of

GSM8K_ANSWER = (
    "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\n"
    "Working 50 minutes, she earned 0.2 x 50 = $<<0.2*50=10>>10.\n"
    "#### 10"
)


class TestNewline:
    def test_gsm8k_reference_final_line_joins_the_last_step(self):
        assert steps_of(GSM8K_ANSWER) == [
            "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.",
            "Working 50 minutes, she earned 0.2 x 50 = $<<0.2*50=10>>10.\n#### 10",
        ]

    def test_spans_index_the_text(self):
        text = "  a = 1\n\n\n   b = 2  \n"
        assert split_steps(text) == [(2, 7), (13, 18)]
        assert [text[s:e] for s, e in split_steps(text)] == ["a = 1", "b = 2"]

    def test_blank_and_whitespace_lines_make_no_steps(self):
        assert steps_of("a\n \n\t\n\nb\n\n") == ["a", "b"]
        assert steps_of("") == [] and steps_of(" \n\t \r\n") == []

    def test_windows_and_old_mac_line_ends(self):
        assert steps_of("a\r\nb\rc\r\n#### 3\r\n") == ["a", "b", "c\r\n#### 3"]

    def test_final_line_alone_is_its_own_step(self):
        assert steps_of("#### 18") == ["#### 18"]
        assert steps_of("\n\n#### 18\n") == ["#### 18"]

    def test_final_line_after_blank_lines_still_joins(self):
        text = "x = <<2*3=6>>6\n\n#### 6"
        assert steps_of(text) == [text]

    def test_every_final_line_joins_the_step_before_it(self):
        assert steps_of("a\n#### 1\nb\n#### 2") == ["a\n#### 1", "b\n#### 2"]

    def test_annotation_inside_a_line_keeps_the_line_whole(self):
        assert steps_of("She has 16-3-4 = <<16-3-4=9>>9 eggs. She sells 9 * 2 = <<9*2=18>>18.") == [
            "She has 16-3-4 = <<16-3-4=9>>9 eggs. She sells 9 * 2 = <<9*2=18>>18."
        ]


class TestStepMarker:
    def test_markers_at_line_starts_any_case_and_punctuation(self):
        text = "Let me think.\nStep 1: add 2 and 3.\nIt is 5.\nstep 2. double it: 10\n  STEP 3) done\n#### 10"
        assert steps_of(text, rule="step_marker") == [
            "Let me think.",
            "Step 1: add 2 and 3.\nIt is 5.",
            "step 2. double it: 10",
            "STEP 3) done\n#### 10",
        ]

    def test_markdown_markers(self):
        text = "**Step 1:** half is 4\n### Step 2: twice is 8"
        assert steps_of(text, rule="step_marker") == ["**Step 1:** half is 4", "### Step 2: twice is 8"]

    def test_marker_inside_a_line_does_not_split(self):
        assert steps_of("Do it as in Step 1: again.\nStep 2: x", rule="step_marker") == [
            "Do it as in Step 1: again.", "Step 2: x"
        ]

    def test_no_marker_is_one_step_and_no_number_is_no_marker(self):
        assert steps_of("a\n\nb", rule="step_marker") == ["a\n\nb"]
        assert steps_of("Step one: a\nStep two: b", rule="step_marker") == ["Step one: a\nStep two: b"]

    def test_blank_text_before_the_first_marker_is_no_step(self):
        assert split_steps("\n  \nStep 1: a\n\nStep 2: b\n", rule="step_marker") == [(4, 13), (15, 24)]


class TestSentence:
    def test_sentences_and_lines(self):
        assert steps_of("It costs 3.5 dollars. He buys 2! Total? 7\nNext line", rule="sentence") == [
            "It costs 3.5 dollars.", "He buys 2!", "Total?", "7", "Next line"
        ]

    def test_dot_inside_an_annotation_ends_nothing(self):
        text = "Half of 4 is <<0.5*4=2>>2 apples. Then <<2. 5=3>>3 more."
        assert steps_of(text, rule="sentence") == ["Half of 4 is <<0.5*4=2>>2 apples.", "Then <<2. 5=3>>3 more."]

    def test_enumerations_and_abbreviations_end_nothing(self):
        text = "1. Take e.g. the first. Then the rest.\nStep 2. Mr. Smith pays."
        assert steps_of(text, rule="sentence") == [
            "1. Take e.g. the first.", "Then the rest.", "Step 2. Mr. Smith pays."
        ]

    def test_closing_quote_stays_with_its_sentence(self):
        assert steps_of('He said "done." Then (it ended.) Fine.', rule="sentence") == [
            'He said "done."', "Then (it ended.)", "Fine."
        ]

    def test_final_answer_joins_the_last_sentence(self):
        assert steps_of("So 4. He has 5 apples. #### 5", rule="sentence") == ["So 4.", "He has 5 apples. #### 5"]
        assert steps_of(GSM8K_ANSWER, rule="sentence") == steps_of(GSM8K_ANSWER)


def test_unknown_rule():
    with pytest.raises(ValueError, match="rule must be one of newline, step_marker, sentence; got 'para'"):
        split_steps("a", rule="para")


def test_annotation_spans():
    assert annotation_spans("a <<1+1=2>>2 and <<x\ny>> <<<3*1=3>>") == [(2, 11), (26, 35)]


class TestStepsFrame:
    def test_one_row_per_solution_with_spans(self):
        solutions = pl.DataFrame({"sid": ["a", "b", "c", "d"], "text": ["x\n\ny", "", None, GSM8K_ANSWER]})

        out = steps_frame(solutions, text_column="text", id_column="sid", rule="newline")

        assert out.schema == pl.Schema({"sid": pl.String, "steps": pl.List(pl.String), "step_spans": pl.List(SPAN)})
        assert out["sid"].to_list() == ["a", "b", "c", "d"]
        assert out["steps"].to_list()[:3] == [["x", "y"], [], None]
        assert out["step_spans"].to_list()[:3] == [[{"start": 0, "end": 1}, {"start": 3, "end": 4}], [], None]
        assert out["steps"][3].to_list() == steps_of(GSM8K_ANSWER)

    def test_missing_column(self):
        with pytest.raises(ValueError, match="column 'completion' not in the solutions table"):
            steps_frame(pl.DataFrame({"id": ["a"]}), text_column="completion", id_column="id")


# --- properties ----------------------------------------------------------------------------------

_LINE_BREAK = re.compile(r"\r\n|\r|\n")

_number = st.one_of(
    st.integers(-50, 5000).map(str), st.decimals(0, 100, places=2, allow_nan=False).map(str)
)
_annotation = st.builds(
    lambda a, op, b, c, pad: f"<<{a}{pad}{op}{pad}{b}={c}>>",
    _number, st.sampled_from(["+", "-", "*", "/", "."]), _number, _number, st.sampled_from(["", " ", ". "]),
)
_word = st.one_of(
    st.sampled_from(["She", "has", "eggs", "e.g.", "Mr.", "so", "1.", "Step", "step 2:", "Step 3.", "####", "$", "!", "?"]),
    _number,
    st.text(alphabet="abcXYZ.,!?:$#*()", min_size=1, max_size=6),
)
_separator = st.sampled_from([" ", "  ", ". ", "! ", "? ", "\n", "\n\n", "\r\n", " \n \n", "\t", "\n#### ", "\nStep 4: "])
_piece = st.one_of(_word, _annotation, _separator)
solution_texts = st.lists(_piece, max_size=40).map("".join)
any_texts = st.text(
    alphabet=st.one_of(st.sampled_from(list("<>=.!?#\n\r \t5Ss:")), st.characters()), max_size=120
)
texts = st.one_of(solution_texts, any_texts)


def _check_spans(text: str, spans: list[tuple[int, int]]) -> None:
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)  # ordered, non-overlapping, inside, non-empty
        assert text[previous_end:start].strip() == ""  # only whitespace between steps
        step = text[start:end]
        assert step.strip() == step and step.strip()
        previous_end = end
    assert text[previous_end:].strip() == ""
    if not spans:
        assert text.strip() == ""
    # The steps and the original separators between them give the text back.
    edges = [0, *[x for span in spans for x in span], len(text)]
    assert "".join(text[a:b] for a, b in zip(edges, edges[1:])) == text
    assert "".join(text.split()) == "".join("".join(text[s:e] for s, e in spans).split())
    for a_start, a_end in annotation_spans(text):
        for start, end in spans:
            assert not a_start < start < a_end and not a_start < end < a_end


@pytest.mark.parametrize("rule", RULES)
@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_spans_are_well_formed(rule, text):
    _check_spans(text, split_steps(text, rule=rule))


@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_newline_steps_are_lines_and_idempotent(text):
    for start, end in split_steps(text):
        step = text[start:end]
        assert split_steps(step) == [(0, len(step))]
        lines = [line.strip() for line in _LINE_BREAK.split(step) if line.strip()]
        assert all(line.startswith("####") for line in lines[1:])


@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_sentences_nest_in_lines(text):
    lines = split_steps(text)
    for start, end in split_steps(text, rule="sentence"):
        assert any(ls <= start and end <= le for ls, le in lines)


@settings(max_examples=200, deadline=None)
@given(text=solution_texts)
def test_step_marker_steps_start_at_a_marker(text):
    spans = split_steps(text, rule="step_marker")
    for start, _ in spans[1:]:
        assert re.match(r"[#*_>-]*\s*step\s*\d", text[start:], re.IGNORECASE)
