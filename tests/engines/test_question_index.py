"""The scripted engine's question lookup: the same answer as scanning every known question."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from prefmill.engines.scripted import QuestionIndex
from tests.conftest import GSM8K

QUESTIONS = [json.loads(line)["question"] for line in (GSM8K / "train.jsonl").read_text().splitlines()[:500]]
QUESTIONS += ["How many?", "Janet has 3 apples. How many are left?", "Janet has 3 apples. How many are left? Then"]
INDEX = QuestionIndex(QUESTIONS)


def _scan(text: str) -> str | None:
    return max((q for q in QUESTIONS if q in text), key=len, default=None)


@settings(max_examples=300, deadline=None)
@given(q=st.sampled_from(QUESTIONS), before=st.sampled_from(["", "Solve: ", "(", "Q:\n", "x"]),
       after=st.sampled_from(["", " Answer step by step.", ")", "\n#### 4"]))
def test_finds_what_a_scan_finds(q, before, after):
    assert INDEX.find(before + q + after) == _scan(before + q + after)


def test_the_longest_question_wins_and_unknown_text_finds_none():
    assert INDEX.find("Janet has 3 apples. How many are left? Then what?") == QUESTIONS[-1]
    assert INDEX.find("nothing anyone asked") is None
