"""tasks/consensus.py: the first-error parser, the judge stage on scripted judges, and the MC/judge consensus."""

from __future__ import annotations

import re

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefmill.config import JudgeConfig
from prefmill.engines.base import GenResult
from prefmill.engines.scripted import ScriptedEngine, last_user_text
from prefmill.errors import EngineError, InputError
from prefmill.tasks.judging import answer_format
from prefmill.tasks.process.consensus import (
    FIRST_ERROR_LINE,
    build_first_error_prompt,
    consensus,
    consensus_stats,
    judge_first_errors,
    parse_first_error,
)

PROMPT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is (2 + 3) * 4?"}]


class TestParseFirstError:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("Step 2 multiplies wrongly.\nFirst error: 2", 1),
            ("All fine.\nFirst error: none", "none"),
            ("First error: None.", "none"),
            ("First error: no errors", "none"),
            ("**First error:** Step 3", 2),
            ("The first wrong step is step 4.", 3),
            ("The first error occurs in step 1, where 2 + 3 is taken as 6.", 0),
            ("first mistake: #5", 4),
            ("First error: 2\nOn second thought the division is right.\nFirst error: none", "none"),  # last wins
            ("Step 3 adds 12 and 7.\nFirst error: 5", 4),
        ],
    )
    def test_parses(self, text, expected):
        assert parse_first_error(text, 5) == (expected, None)

    @pytest.mark.parametrize(
        ("text", "error"),
        [
            ("", "empty_output"),
            ("  \n ", "empty_output"),
            (None, "empty_output"),
            ("Step 3 is wrong because 5 * 4 = 20.", "no_answer"),  # a bare step number is never taken
            ("First error: 2.5", "no_answer"),
            ("First error: unclear", "no_answer"),
            ("First error: 0", "out_of_range"),
            ("First error: -1", "out_of_range"),
            ("First error: 6", "out_of_range"),
            ("First error: 2 or 3", "ambiguous"),
            ("First error: step 2, step 4", "ambiguous"),
            ("First error: 2-3", "ambiguous"),
            ("First error: none or 4", "ambiguous"),
        ],
    )
    def test_errors(self, text, error):
        assert parse_first_error(text, 5) == (None, error)

    @settings(max_examples=300, deadline=None)
    @given(
        prose=st.text(st.characters(blacklist_categories=("Nd", "Cs")), max_size=200),
        k=st.integers(1, 40),
        data=st.data(),
    )
    def test_any_step_after_digit_free_prose(self, prose, k, data):
        n = data.draw(st.integers(1, k))
        assert parse_first_error(f"{prose}\nFirst error: {n}", k) == (n - 1, None)
        beyond = data.draw(st.integers(k + 1, 500))
        assert parse_first_error(f"{prose}\nFirst error: {beyond}", k) == (None, "out_of_range")

    @given(n=st.integers(1, 99), rationale=st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), min_size=1, max_size=300))
    def test_guided_format_is_parsable(self, n, rationale):
        """Every text the guided-decoding regex allows parses (to a step or to out_of_range)."""
        text = f"{rationale}\nFirst error: {n}"
        assert re.fullmatch(answer_format(FIRST_ERROR_LINE, rationale=True), text)
        assert parse_first_error(text, 99) == (n - 1, None)
        assert parse_first_error(f"{rationale}\nFirst error: none", 3) == ("none", None)


def test_prompt_numbers_steps_and_states_the_answer_line():
    text = build_first_error_prompt("What is 2 + 2?", ["2 + 2 = 5", "So 5."])
    assert "[Problem]\nWhat is 2 + 2?" in text
    assert "Step 1: 2 + 2 = 5\nStep 2: So 5." in text
    assert "`First error: <n>`" in text and "`First error: none`" in text


def _chains(*rows: tuple[str, list[str]]) -> pl.DataFrame:
    return pl.DataFrame({"chain_id": [r[0] for r in rows], "prompt": [PROMPT] * len(rows), "completions": [r[1] for r in rows]})


def _by_step(answers: dict[str, list[str]]):
    """A judge that answers by the first step of the judged solution: answers[step 1 text][sample index]."""

    def policy(request, index, rng):
        first = re.search(r"Step 1: (.*)", last_user_text(request)).group(1)
        replies = answers[first]
        return replies[index % len(replies)]

    return policy


class TestJudgeFirstErrors:
    def test_one_call_verdicts_and_raw(self):
        engine = ScriptedEngine(_by_step({
            "a": ["Step 2 is off.\nFirst error: 2"], "b": ["Fine.\nFirst error: none"], "c": ["I cannot tell."],
        }))
        chains = _chains(("c1", ["a", "x", "y"]), ("c2", ["b"]), ("c3", ["c", "d"]))
        out = judge_first_errors(chains, engine=engine, cfg=JudgeConfig(max_parse_fail=0.5))
        assert engine.calls == 1 and engine.requests_seen == 3
        assert out["chain_id"].to_list() == ["c1", "c2", "c3"]
        assert out["judge_first_error"].to_list() == [1, None, None]
        assert out["judge_says_none"].to_list() == [False, True, None]
        assert out["judge_parse_error"].to_list() == [None, None, "no_answer"]
        assert out["judge_raw"].to_list()[2] == ["I cannot tell."]
        assert out["judge_engine"].to_list() == ["scripted:scripted"] * 3

    def test_guided_decoding_and_request_ids(self):
        seen = []

        def policy(request, index, rng):
            seen.append(request)
            return "ok\nFirst error: 1"

        chains = _chains(("c1", ["a"]))
        judge_first_errors(chains, engine=ScriptedEngine(policy), cfg=JudgeConfig())
        judge_first_errors(chains, engine=ScriptedEngine(policy), cfg=JudgeConfig(constrained=False))
        assert [r.request_id for r in seen] == ["c1", "c1"]
        assert seen[0].sampling.regex == FIRST_ERROR_LINE and seen[1].sampling.regex is None
        assert seen[0].messages[-1]["role"] == "user" and "What is (2 + 3) * 4?" in seen[0].messages[-1]["content"]

    def test_majority_of_samples(self):
        engine = ScriptedEngine(_by_step({
            "a": ["x\nFirst error: 2", "x\nFirst error: 1", "x\nFirst error: 2"],
            "b": ["x\nFirst error: none", "garbled", "x\nFirst error: 1"],  # one usable each way: a tie
            "c": ["garbled", "garbled", "x\nFirst error: none"],
        }))
        chains = _chains(("c1", ["a", "b"]), ("c2", ["b", "b"]), ("c3", ["c"]))
        out = judge_first_errors(chains, engine=engine, cfg=JudgeConfig(samples=3, max_parse_fail=1.0))
        assert out["judge_first_error"].to_list() == [1, None, None]
        assert out["judge_says_none"].to_list() == [False, None, True]
        assert out["judge_parse_error"].to_list() == [None, "no_majority", "no_answer"]
        assert out["judge_parse_failures"].to_list() == [0, 1, 2]
        assert [len(raw) for raw in out["judge_raw"]] == [3, 3, 3]

    def test_too_many_failures_raise(self):
        engine = ScriptedEngine(lambda request, index, rng: "no idea")
        with pytest.raises(EngineError, match="max_parse_fail"):
            judge_first_errors(_chains(("c1", ["a"]), ("c2", ["b"])), engine=engine, cfg=JudgeConfig(max_parse_fail=0.5))

    def test_engine_failure_is_recorded_not_padded(self):
        class Failing:
            fingerprint = "test:failing"

            def generate(self, requests):
                return [GenResult(r.request_id, error="OOM") for r in requests]

        out = judge_first_errors(_chains(("c1", ["a"])), engine=Failing(), cfg=JudgeConfig(max_parse_fail=1.0))
        assert out["judge_parse_error"].to_list() == ["engine_error: OOM"]
        assert out["judge_raw"].to_list() == [[None]]
        assert out["judge_says_none"].to_list() == [None]

    def test_bad_input(self):
        engine = ScriptedEngine(lambda request, index, rng: "x\nFirst error: 1")
        with pytest.raises(InputError, match="no user message"):
            judge_first_errors(pl.DataFrame({"chain_id": ["c1"], "prompt": [[{"role": "system", "content": "s"}]],
                                             "completions": [["a"]]}), engine=engine, cfg=JudgeConfig())
        with pytest.raises(InputError, match="repeat"):
            judge_first_errors(_chains(("c1", ["a"]), ("c1", ["b"])), engine=engine, cfg=JudgeConfig())
        with pytest.raises(InputError, match="lacks"):
            judge_first_errors(pl.DataFrame({"chain_id": ["c1"]}), engine=engine, cfg=JudgeConfig())


def _labelled(*rows: tuple[str, list[bool | None], int | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {"chain_id": [r[0] for r in rows], "labels": [r[1] for r in rows], "first_error_step": [r[2] for r in rows],
         "method": ["mc"] * len(rows)},
        schema={"chain_id": pl.String, "labels": pl.List(pl.Boolean), "first_error_step": pl.Int32, "method": pl.String},
    )


def _judged(*rows: tuple[str, int | None, bool | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {"chain_id": [r[0] for r in rows], "judge_first_error": [r[1] for r in rows], "judge_says_none": [r[2] for r in rows],
         "judge_parse_error": [None if r[2] is not None else "no_answer" for r in rows]},
        schema={"chain_id": pl.String, "judge_first_error": pl.Int32, "judge_says_none": pl.Boolean, "judge_parse_error": pl.String},
    )


class TestConsensus:
    def test_keep_and_drop_reasons(self):
        labelled = _labelled(
            ("same_step", [True, False, False], 1),
            ("both_none", [True, True], None),
            ("judge_later", [True, False], 1),
            ("judge_says_none", [False, False], 0),
            ("judge_finds_one", [True, True], None),
            ("unparsable", [True, False], 1),
            ("mc_unknown", [True, None], None),
            ("error_after_null", [None, False], None),
            ("error_before_null", [True, False, None], 1),
        )
        judged = _judged(
            ("error_before_null", 1, False), ("same_step", 1, False), ("both_none", None, True), ("judge_later", 2, False),
            ("judge_says_none", None, True), ("judge_finds_one", 0, False), ("unparsable", None, None),
            ("mc_unknown", None, True), ("error_after_null", 1, False),
        )
        out = consensus(labelled, judged)
        assert out.height == labelled.height
        assert out["chain_id"].to_list() == labelled["chain_id"].to_list()
        assert out["drop_reason"].to_list() == [
            None, None, "judge_disagrees", "judge_disagrees", "judge_disagrees", "judge_unparsable",
            "mc_incomplete", "mc_incomplete", None,
        ]
        assert out["keep"].to_list() == [True, True, False, False, False, False, False, False, True]
        assert out.columns == [*labelled.columns, "judge_first_error", "judge_says_none", "judge_parse_error", "drop_reason", "keep"]
        assert consensus_stats(out) == {
            "chains": 9, "kept": 3, "kept_share": 3 / 9, "dropped_judge_disagrees": 3,
            "dropped_judge_unparsable": 1, "dropped_mc_incomplete": 2,
        }

    def test_end_to_end_with_a_scripted_judge(self):
        engine = ScriptedEngine(_by_step({"a": ["x\nFirst error: 2"], "b": ["x\nFirst error: none"]}))
        chains = _chains(("c1", ["a", "bad"]), ("c2", ["b", "fine"]), ("c3", ["a", "fine"]))
        labelled = chains.join(_labelled(("c1", [True, False], 1), ("c2", [True, True], None), ("c3", [True, True], None)),
                               on="chain_id", maintain_order="left")
        out = consensus(labelled, judge_first_errors(chains, engine=engine, cfg=JudgeConfig()))
        assert out["keep"].to_list() == [True, True, False]

    def test_bad_input(self):
        labelled = _labelled(("c1", [True], None), ("c2", [True], None))
        with pytest.raises(InputError, match="no judge row"):
            consensus(labelled, _judged(("c1", None, True)))
        with pytest.raises(InputError, match="repeat"):
            consensus(labelled, _judged(("c1", None, True), ("c1", None, True), ("c2", None, True)))
        with pytest.raises(InputError, match="lacks"):
            consensus(labelled.drop("labels"), _judged(("c1", None, True), ("c2", None, True)))
        filtered = consensus(labelled, _judged(("c1", None, True), ("c2", None, True)))
        with pytest.raises(InputError, match="already has"):
            consensus(filtered, _judged(("c1", None, True), ("c2", None, True)))
