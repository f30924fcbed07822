"""tasks/judge.py: both parsers on a catalogue of malformed outputs, and both stages on scripted judges."""

from __future__ import annotations

import re
import time

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefmill.config import DEFAULT_RUBRIC, JudgeConfig
from prefmill.engines.base import GenResult
from prefmill.engines.scripted import ScriptedEngine, last_user_text
from prefmill.errors import EngineError, InputError
from prefmill.schemas.tables import SCORED
from prefmill.seeds import derived_seed
from prefmill.tasks.judging import answer_format
from prefmill.tasks.preference.judge import (
    PAIRWISE_LINE,
    POINTWISE_LINE,
    build_pairwise_requests,
    build_pointwise_requests,
    judge_pairwise,
    judge_pointwise,
    parse_pairwise,
    parse_pointwise,
    summarize_sides,
)

QUESTION = "Tom has 3 apples and buys 15 more. How many apples does he have?"


def _samples(*completions: str, ids: list[str] | None = None) -> pl.DataFrame:
    ids = ids or [f"s{i}" for i in range(len(completions))]
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}]
    return pl.DataFrame({"sample_id": ids, "prompt": [prompt] * len(ids), "completion": list(completions)})


def _pairs(*sides: tuple[str, str], ids: list[str] | None = None) -> pl.DataFrame:
    """(chosen_text, rejected_text) per pair."""
    ids = ids or [f"p{i}" for i in range(len(sides))]
    prompt = [{"role": "user", "content": QUESTION}]
    return pl.DataFrame({
        "pair_id": ids, "prompt": [prompt] * len(ids),
        "chosen_text": [c for c, _ in sides], "rejected_text": [r for _, r in sides],
    })


def _shown(request) -> tuple[str, str]:
    """(response A, response B) as the judge prompt shows them."""
    text = last_user_text(request)
    a = re.search(r"\[Response A\]\n(.*)\n\[End of Response A\]", text, re.S).group(1)
    b = re.search(r"\[Response B\]\n(.*)\n\[End of Response B\]", text, re.S).group(1)
    return a, b


def always_a(request, index, rng):
    return "Both look fine, the first reads better.\nVerdict: A"


def prefers_longer(request, index, rng):
    a, b = _shown(request)
    return f"The longer one explains more.\nVerdict: {'A' if len(a) >= len(b) else 'B'}"


def prefers_correct(request, index, rng):
    a, b = _shown(request)
    return f"Checked the arithmetic.\nVerdict: {'A' if '#### 18' in a else 'B' if '#### 18' in b else 'tie'}"


def always_tie(request, index, rng):
    return "Equally good.\nVerdict: tie"


CORRECT, WRONG = "3 + 15 = 18\n#### 18", "3 + 15 = 19, so he has many many apples in total now\n#### 19"


class Recording:
    """Wraps an engine: records each call's request ids, optionally reverses results, fails some ids."""

    def __init__(self, inner, *, reverse: bool = False, fail: set[str] = frozenset()) -> None:
        self.inner, self.reverse, self.fail = inner, reverse, fail
        self.fingerprint = inner.fingerprint
        self.calls: list[list[str]] = []

    def generate(self, requests):
        self.calls.append([r.request_id for r in requests])
        out = [GenResult(r.request_id, error=f"boom {r.request_id}") if r.request_id in self.fail else res
               for r, res in zip(requests, self.inner.generate(requests))]
        return out[::-1] if self.reverse else out


POINTWISE_CATALOGUE = [
    ("Score: 7", (7, None, None)),
    ("score = 7/10", (7, None, None)),
    ("The steps are right.\n**Score:** 8", (8, "The steps are right.", None)),
    ("Rating: 9 out of 10", (9, None, None)),
    ("Mostly right.\n7/10", (7, "Mostly right.", None)),
    ("Mostly right.\n**7 / 10**\n\n", (7, "Mostly right.", None)),
    ("Clear work. [[8]]", (8, "Clear work.", None)),
    ("## Assessment\nArithmetic checks out.\n\n## Score: 9", (9, "## Assessment\nArithmetic checks out.", None)),
    ("Good.\nScore: 6\nI hope this helps! Let me know.", (6, "Good.", None)),
    ("First pass.\nScore: 3\nOn reflection it is right.\nScore: 9", (9, "First pass.\nScore: 3\nOn reflection it is right.", None)),
    ("Overall rating (1-10): [[9]]", (9, None, None)),
    ("Final score: 8", (8, None, None)),
    ("Correct and clear. Score: 10", (10, "Correct and clear.", None)),
    ("SCORE:5", (5, None, None)),
    ("Score: **4**.", (4, None, None)),
    ("Score: 7.5", (8, None, None)),
    ("Score: 6.5", (7, None, None)),
    ("Score: 7.49", (7, None, None)),
    ("Score: 9.5", (10, None, None)),
    ("Score: 1.0", (1, None, None)),
    ("Score: 0", (None, None, "score_out_of_range")),
    ("Score: 11", (None, None, "score_out_of_range")),
    ("Score: -3", (None, None, "score_out_of_range")),
    ("Score: 100", (None, None, "score_out_of_range")),
    ("Score: 10.5", (None, None, "score_out_of_range")),
    ("Score: 0.4", (None, None, "score_out_of_range")),
    ("Score: 4/5", (None, None, "wrong_scale")),
    ("The answer 18 is right.", (None, None, "no_score")),
    ("He has 18 apples.\n18", (None, None, "no_score")),
    ("A grade 5 class has 30 students.", (None, None, "no_score")),
    ("Score: excellent", (None, None, "no_score")),
    ("I would score this highly.", (None, None, "no_score")),
    ("", (None, None, "empty_output")),
    ("  \n\t", (None, None, "empty_output")),
]

PAIRWISE_CATALOGUE = [
    ("Verdict: A", ("A", None)),
    ("Verdict: [[A]]", ("A", None)),
    ("**Verdict:** B", ("B", None)),
    ("Final verdict: **A**", ("A", None)),
    ("The better response is A.", ("A", None)),
    ("Answer: Response B", ("B", None)),
    ("verdict: b", ("B", None)),
    ("VERDICT: a.", ("A", None)),
    ("Verdict: (B)", ("B", None)),
    ("Verdict: A. Response B drops a step.", ("A", None)),
    ("Verdict: B\nThanks for asking!", ("B", None)),
    ("Verdict: tie", ("tie", None)),
    ("Verdict: Tie.", ("tie", None)),
    ("Verdict: a tie", ("tie", None)),
    ("Verdict: draw", ("tie", None)),
    ("After weighing both: [[C]]", ("tie", None)),
    ("Response B is better than A.", ("B", None)),
    ("I prefer B.", ("B", None)),
    ("The better response is A.\nVerdict: B", ("B", None)),  # the labelled line wins
    ("Verdict: A\nWait, no.\nVerdict: B", ("B", None)),  # the last labelled line wins
    ("[[A]] at first, but [[B]]", ("B", None)),
    ("A and B are both correct.", (None, "ambiguous")),
    ("Verdict: A or B", (None, "ambiguous")),
    ("Verdict: A and B are both fine", (None, "ambiguous")),
    ("Verdict: A/B", (None, "ambiguous")),
    ("Verdict: both", (None, "ambiguous")),
    ("The better response is A, but Response B is better in style.", (None, "ambiguous")),
    ("Answer: a bit unclear", (None, "no_verdict")),
    ("I cannot decide.", (None, "no_verdict")),
    ("Verdict: 18", (None, "no_verdict")),
    ("", (None, "empty_output")),
    ("\n  ", (None, "empty_output")),
]

# Prose without digits; it includes words the parsers look for, but never a label with a value.
_WORDS = ["the", "step", "is", "right", "wrong", "score", "rating", "response", "better", "a", "b", "A", "B",
          "both", "tie", "**", "#", "[", "]", ":", ".", ",", "apples", "sum", "checks", "out"]
_PROSE = st.lists(st.sampled_from(_WORDS), max_size=30).map(" ".join)
_LINES = st.lists(_PROSE, max_size=4).map("\n".join)


class TestParsePointwise:
    @pytest.mark.parametrize(("text", "expected"), POINTWISE_CATALOGUE)
    def test_catalogue(self, text, expected):
        assert parse_pointwise(text) == expected

    @settings(max_examples=200, deadline=None)
    @given(score=st.integers(1, 10), before=_LINES, after=_LINES)
    def test_score_line_after_any_prose(self, score, before, after):
        got, rationale, error = parse_pointwise(f"{before}\nScore: {score}\n{after}")
        assert (got, error) == (score, None)
        assert rationale == (before.strip() or None)

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=200))
    def test_never_raises_and_score_xor_error(self, text):
        score, rationale, error = parse_pointwise(text)
        assert (score is None) != (error is None)
        assert score is None or 1 <= score <= 10
        assert rationale is None or score is not None


# Degenerate outputs small judges emit: long runs of one character. Each must parse in linear time.
_RUNS = [f"{head}{' ' * 50_000}x" for head in ("Score", "Score:", "Score: 7", "[[7]]", "7/10", "Verdict:", "Verdict: a",
                                               "The better response is", "I prefer")] + ["[" * 50_000, "1/" * 25_000]


@pytest.mark.parametrize("text", _RUNS, ids=lambda t: t[:12].strip() or "spaces")
def test_long_runs_parse_in_linear_time(text):
    start = time.perf_counter()
    parse_pointwise(text), parse_pairwise(text)
    assert time.perf_counter() - start < 1.0


class TestParsePairwise:
    @pytest.mark.parametrize(("text", "expected"), PAIRWISE_CATALOGUE)
    def test_catalogue(self, text, expected):
        assert parse_pairwise(text) == expected

    @settings(max_examples=200, deadline=None)
    @given(verdict=st.sampled_from(["A", "B", "tie"]), before=_LINES, after=_LINES, lower=st.booleans())
    def test_verdict_line_between_any_prose(self, verdict, before, after, lower):
        shown = verdict.lower() if lower else verdict
        assert parse_pairwise(f"{before}\nVerdict: {shown}\n{after}") == (verdict, None)

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=200))
    def test_never_raises_and_verdict_xor_error(self, text):
        verdict, error = parse_pairwise(text)
        assert verdict in ("A", "B", "tie", None)
        assert (verdict is None) != (error is None)


class TestBuildPointwiseRequests:
    def test_one_request_per_sample(self):
        cfg = JudgeConfig(samples=3, temperature=0.2, max_tokens=64, seed=7)
        requests = build_pointwise_requests(_samples(CORRECT, WRONG, ids=["x-0", "x-1"]), cfg=cfg)
        assert [r.request_id for r in requests] == ["x-0", "x-1"]
        s = requests[1].sampling
        assert (s.n, s.temperature, s.max_tokens, s.seed, s.logprobs) == (3, 0.2, 64, derived_seed(7, "x-1"), False)
        (message,) = requests[1].messages
        assert message["role"] == "user"
        assert message["content"].startswith(DEFAULT_RUBRIC)
        assert f"[Problem]\n{QUESTION}\n\n[Solution]\n{WRONG}\n" in message["content"]
        assert message["content"].endswith("exactly `Score: <1-10>` (an integer from 1 to 10), and nothing else.")

    def test_question_is_the_last_user_message(self):
        prompt = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "second"}]
        frame = pl.DataFrame({"sample_id": ["s"], "prompt": [prompt], "completion": ["c"]})
        (request,) = build_pointwise_requests(frame, cfg=JudgeConfig())
        assert "[Problem]\nsecond\n" in request.messages[0]["content"]

    def test_custom_rubric(self):
        (request,) = build_pointwise_requests(_samples(CORRECT), cfg=JudgeConfig(rubric="Grade {strictly}."))
        assert request.messages[0]["content"].startswith("Grade {strictly}.\n\n[Problem]")

    def test_missing_column(self):
        with pytest.raises(InputError, match=r"judge_pointwise: missing column\(s\) \['completion'\]"):
            build_pointwise_requests(_samples(CORRECT).drop("completion"), cfg=JudgeConfig())

    def test_repeated_ids(self):
        with pytest.raises(InputError, match="`sample_id` values repeat"):
            build_pointwise_requests(_samples(CORRECT, WRONG, ids=["s", "s"]), cfg=JudgeConfig())

    def test_prompt_without_user_message(self):
        frame = pl.DataFrame({"sample_id": ["s"], "prompt": [[{"role": "system", "content": "x"}]], "completion": ["c"]})
        with pytest.raises(InputError, match="'s' has no user message"):
            build_pointwise_requests(frame, cfg=JudgeConfig())


class TestConstrainedFormat:
    @pytest.mark.parametrize("constrained", [True, False])
    @pytest.mark.parametrize("rationale", [True, False])
    def test_regex_attached_only_when_constrained(self, constrained, rationale):
        cfg = JudgeConfig(constrained=constrained, rationale=rationale)
        (point,) = build_pointwise_requests(_samples(CORRECT), cfg=cfg)
        ab, ba = build_pairwise_requests(_pairs((CORRECT, WRONG)), cfg=cfg)
        lines = (POINTWISE_LINE, PAIRWISE_LINE, PAIRWISE_LINE)
        expected = tuple(answer_format(x, rationale=rationale) for x in lines) if constrained else (None, None, None)
        assert (point.sampling.regex, ab.sampling.regex, ba.sampling.regex) == expected
        assert point.sampling.max_tokens == (256 if rationale else 12)
        assert ("Explain your assessment" in point.messages[0]["content"]) is rationale

    def test_without_rationale_the_format_is_the_answer_line_alone(self):
        for text, ok in (("Score: 7", True), ("Score: 10", True), ("ok\nScore: 7", False), ("Score: 11", False)):
            assert bool(re.fullmatch(answer_format(POINTWISE_LINE, rationale=False), text)) is ok, text
        assert parse_pointwise("Score: 7") == (7, None, None) and parse_pairwise("Verdict: tie") == ("tie", None)

    @given(rationale=st.text(alphabet=st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)),
                             min_size=1, max_size=300),
           score=st.integers(1, 10), verdict=st.sampled_from(["A", "B", "tie"]))
    def test_every_text_the_formats_allow_parses(self, rationale, score, verdict):
        point, pair = f"{rationale}\nScore: {score}", f"{rationale}\nVerdict: {verdict}"
        assert re.fullmatch(answer_format(POINTWISE_LINE, rationale=True), point)
        assert re.fullmatch(answer_format(PAIRWISE_LINE, rationale=True), pair)
        assert parse_pointwise(point)[0] == score
        assert parse_pairwise(pair)[0] == verdict


class TestBuildPairwiseRequests:
    def test_two_orders_per_pair(self):
        cfg = JudgeConfig(samples=2, seed=5)
        requests = build_pairwise_requests(_pairs((CORRECT, WRONG), ("c1", "r1"), ids=["q", "r"]), cfg=cfg)
        assert [r.request_id for r in requests] == ["q|ab", "q|ba", "r|ab", "r|ba"]
        assert _shown(requests[0]) == (CORRECT, WRONG)
        assert _shown(requests[1]) == (WRONG, CORRECT)
        assert [r.sampling.seed for r in requests] == [derived_seed(5, i) for i in ("q|ab", "q|ba", "r|ab", "r|ba")]
        assert {(r.sampling.n, r.sampling.logprobs) for r in requests} == {(2, False)}
        content = requests[0].messages[0]["content"]
        assert f"[Problem]\n{QUESTION}\n" in content
        assert content.endswith("`Verdict: A`, `Verdict: B` or `Verdict: tie`, and nothing else.")

    def test_missing_column(self):
        with pytest.raises(InputError, match=r"missing column\(s\) \['rejected_text'\]"):
            build_pairwise_requests(_pairs((CORRECT, WRONG)).drop("rejected_text"), cfg=JudgeConfig())


def _graded(request, index, rng):
    """Scores the solution: 9 when it ends in 18, else 3; the index shifts it to tell samples apart."""
    score = (9 if "#### 18\n" in last_user_text(request) else 3) - index
    return f"Judge sample {index} checked the steps.\nScore: {score}"


class TestJudgePointwise:
    def test_scores_rationale_and_raw(self):
        engine = Recording(ScriptedEngine(_graded, name="grader"))
        out = judge_pointwise(_samples(CORRECT, WRONG), engine=engine, cfg=JudgeConfig(samples=2))
        assert out.columns == ["sample_id", "judge_scores", "judge_score", "judge_rationale", "judge_parse_failures",
                               "judge_parse_error", "judge_raw", "judge_engine"]
        assert out.select("sample_id", "judge_scores", "judge_score", "judge_rationale").rows() == [
            ("s0", [9, 8], 8.5, "Judge sample 0 checked the steps."),
            ("s1", [3, 2], 2.5, "Judge sample 0 checked the steps."),
        ]
        assert out["judge_parse_failures"].to_list() == [0, 0]
        assert out["judge_parse_error"].to_list() == [None, None]
        assert out["judge_raw"][0].to_list() == ["Judge sample 0 checked the steps.\nScore: 9",
                                                 "Judge sample 1 checked the steps.\nScore: 8"]
        assert out["judge_engine"].to_list() == ["scripted:grader"] * 2
        assert engine.calls == [["s0", "s1"]]

    def test_dtypes_match_the_scored_schema(self):
        out = judge_pointwise(_samples(CORRECT), engine=ScriptedEngine(_graded), cfg=JudgeConfig())
        scored = pl.from_arrow(SCORED.empty_table()).schema
        for name in ("judge_score", "judge_scores", "judge_rationale", "judge_parse_error"):
            assert out.schema[name] == scored[name]

    def test_malformed_outputs_are_nulls_with_errors(self):
        answers = ["Fine.\nScore: 8", "I think it is good", "Score: 11", ""]
        engine = ScriptedEngine(lambda request, index, rng: answers[index])
        out = judge_pointwise(_samples(CORRECT), engine=engine, cfg=JudgeConfig(samples=4, max_parse_fail=1.0))
        assert out.row(0, named=True) | {"judge_engine": None} == {
            "sample_id": "s0", "judge_scores": [8, None, None, None], "judge_score": 8.0, "judge_rationale": "Fine.",
            "judge_parse_failures": 3, "judge_parse_error": "no_score", "judge_raw": answers, "judge_engine": None,
        }

    def test_nothing_parsed_gives_null_score(self):
        engine = ScriptedEngine(lambda request, index, rng: "Looks fine to me.")
        out = judge_pointwise(_samples(CORRECT), engine=engine, cfg=JudgeConfig(samples=2, max_parse_fail=1.0))
        assert out.select("judge_scores", "judge_score", "judge_rationale", "judge_parse_failures").row(0) == (
            [None, None], None, None, 2
        )

    def test_engine_failure_counts_as_parse_failure(self):
        engine = Recording(ScriptedEngine(_graded), fail={"s1"})
        out = judge_pointwise(_samples(CORRECT, WRONG), engine=engine, cfg=JudgeConfig(samples=2))
        assert out.filter(pl.col("sample_id") == "s1").select(
            "judge_scores", "judge_score", "judge_parse_failures", "judge_parse_error", "judge_raw"
        ).row(0) == ([None, None], None, 2, "engine_error: boom s1", [None, None])
        assert out["judge_scores"][0].to_list() == [9, 8]

    def test_too_many_failures_raise(self):
        answers = {"s0": "Score: 7", "s1": "no idea", "s2": "Score: 12"}
        engine = ScriptedEngine(lambda request, index, rng: answers[request.request_id])
        with pytest.raises(EngineError) as info:
            judge_pointwise(_samples("a", "b", "c"), engine=engine, cfg=JudgeConfig(max_parse_fail=0.5))
        assert info.value.message == (
            "judge pointwise: 2 of 3 judge outputs (67%) could not be used, more than judge.max_parse_fail=0.5; "
            "first: no_score in 'no idea'"
        )
        assert "judge.constrained" in info.value.hint and "raise judge.max_parse_fail" in info.value.hint

    def test_share_equal_to_the_limit_passes(self):
        answers = {"s0": "Score: 7", "s1": "no idea"}
        engine = ScriptedEngine(lambda request, index, rng: answers[request.request_id])
        out = judge_pointwise(_samples("a", "b"), engine=engine, cfg=JudgeConfig(max_parse_fail=0.5))
        assert out["judge_parse_failures"].to_list() == [0, 1]

    def test_engine_errors_named_in_the_failure(self):
        engine = Recording(ScriptedEngine(_graded), fail={"s0"})
        with pytest.raises(EngineError, match="first: engine_error: boom s0\n"):
            judge_pointwise(_samples(CORRECT), engine=engine, cfg=JudgeConfig(max_parse_fail=0.0))

    def test_joined_by_id_when_results_come_back_reversed(self):
        engine = Recording(ScriptedEngine(_graded), reverse=True)
        out = judge_pointwise(_samples(WRONG, CORRECT, WRONG, ids=["c", "a", "b"]), engine=engine, cfg=JudgeConfig())
        assert out.select("sample_id", "judge_scores").rows() == [("c", [3]), ("a", [9]), ("b", [3])]
        assert engine.calls == [["c", "a", "b"]]

    def test_input_frame_unchanged(self):
        samples = _samples(CORRECT, WRONG)
        before = samples.clone()
        judge_pointwise(samples, engine=ScriptedEngine(_graded), cfg=JudgeConfig())
        assert samples.equals(before)

    def test_no_samples_no_engine_call(self):
        engine = Recording(ScriptedEngine(_graded))
        out = judge_pointwise(_samples(), engine=engine, cfg=JudgeConfig())
        assert out.height == 0 and "judge_score" in out.columns and engine.calls == []


class TestSummarizeSides:
    @pytest.mark.parametrize(("ab", "ba", "expected"), [
        (["chosen"], ["chosen"], (1.0, True, "chosen")),
        (["chosen"], ["rejected"], (0.5, False, None)),  # position bias: both orders said "A"
        (["tie"], ["tie"], (0.5, True, "tie")),
        (["chosen", "chosen", "rejected"], ["chosen", "rejected", "rejected"], (0.5, True, None)),  # 1 chosen, 1 rejected
        (["chosen", "chosen", "chosen"], ["chosen", "chosen", "rejected"], (5 / 6, True, "chosen")),
        (["chosen", "chosen"], ["chosen", "rejected"], (0.75, False, "chosen")),  # 1 of 2 is no majority
        (["chosen", None], [None, "chosen"], (1.0, None, None)),  # no sample with both orders parsed
        ([None], [None], (None, None, None)),
        (["tie", "chosen"], ["chosen", "chosen"], (0.875, False, "chosen")),
    ])
    def test_cases(self, ab, ba, expected):
        assert summarize_sides(ab, ba) == pytest.approx(expected)


class TestJudgePairwise:
    def test_position_bias_is_never_swap_consistent(self):
        engine = Recording(ScriptedEngine(always_a, name="positional"))
        out = judge_pairwise(_pairs((CORRECT, WRONG), (WRONG, CORRECT)), engine=engine, cfg=JudgeConfig(samples=3))
        assert out["verdicts_ab"].to_list() == [["chosen"] * 3] * 2
        assert out["verdicts_ba"].to_list() == [["rejected"] * 3] * 2
        assert out.select("prefers_chosen_share", "swap_consistent", "judge_prefers").rows() == [(0.5, False, None)] * 2
        assert out["judge_engine"].to_list() == ["scripted:positional"] * 2

    def test_length_preference_is_consistent(self):
        out = judge_pairwise(_pairs(("a long chosen answer", "short"), ("short", "a long rejected answer")),
                             engine=ScriptedEngine(prefers_longer), cfg=JudgeConfig(samples=2))
        assert out.select("pair_id", "prefers_chosen_share", "swap_consistent", "judge_prefers").rows() == [
            ("p0", 1.0, True, "chosen"), ("p1", 0.0, True, "rejected"),
        ]
        assert out["verdicts_ba"].to_list() == [["chosen", "chosen"], ["rejected", "rejected"]]

    def test_content_preference_prefers_chosen(self):
        out = judge_pairwise(_pairs((CORRECT, WRONG)), engine=ScriptedEngine(prefers_correct), cfg=JudgeConfig(samples=2))
        assert out.row(0, named=True) == {
            "pair_id": "p0", "verdicts_ab": ["chosen", "chosen"], "verdicts_ba": ["chosen", "chosen"],
            "prefers_chosen_share": 1.0, "swap_consistent": True, "judge_prefers": "chosen",
            "judge_parse_failures": 0, "judge_parse_error": None,
            "judge_raw_ab": ["Checked the arithmetic.\nVerdict: A"] * 2,
            "judge_raw_ba": ["Checked the arithmetic.\nVerdict: B"] * 2, "judge_engine": "scripted:scripted",
        }

    def test_ties(self):
        out = judge_pairwise(_pairs((CORRECT, WRONG)), engine=ScriptedEngine(always_tie), cfg=JudgeConfig())
        assert out.select("verdicts_ab", "verdicts_ba", "prefers_chosen_share", "swap_consistent", "judge_prefers").row(0) == (
            ["tie"], ["tie"], 0.5, True, "tie"
        )

    def test_majority_of_judge_samples(self):
        def mixed(request, index, rng):  # sample 1 is positional, samples 0 and 2 judge content
            return always_a(request, index, rng) if index == 1 else prefers_correct(request, index, rng)

        out = judge_pairwise(_pairs((CORRECT, WRONG)), engine=ScriptedEngine(mixed), cfg=JudgeConfig(samples=3))
        assert out.select("verdicts_ab", "verdicts_ba", "swap_consistent", "judge_prefers").row(0) == (
            ["chosen", "chosen", "chosen"], ["chosen", "rejected", "chosen"], True, "chosen"
        )
        assert out["prefers_chosen_share"][0] == pytest.approx(5 / 6)

    def test_unparsable_outputs(self):
        def half(request, index, rng):
            return "Verdict: A" if request.request_id.endswith("|ab") else "Both are fine, A and B."

        out = judge_pairwise(_pairs((CORRECT, WRONG)), engine=ScriptedEngine(half), cfg=JudgeConfig(max_parse_fail=0.5))
        assert out.select("verdicts_ab", "verdicts_ba", "prefers_chosen_share", "swap_consistent", "judge_prefers",
                          "judge_parse_failures", "judge_parse_error").row(0) == (
            ["chosen"], [None], 1.0, None, None, 1, "ambiguous"
        )

    def test_engine_failure(self):
        engine = Recording(ScriptedEngine(prefers_correct), fail={"p0|ba"})
        out = judge_pairwise(_pairs((CORRECT, WRONG), (CORRECT, WRONG)), engine=engine, cfg=JudgeConfig(samples=2))
        assert out.select("verdicts_ba", "judge_raw_ba", "swap_consistent", "judge_parse_failures", "judge_parse_error").rows() == [
            ([None, None], [None, None], None, 2, "engine_error: boom p0|ba"),
            (["chosen", "chosen"], ["Checked the arithmetic.\nVerdict: B"] * 2, True, 0, None),
        ]

    def test_too_many_failures_raise(self):
        engine = ScriptedEngine(lambda request, index, rng: "Hard to say.")
        with pytest.raises(EngineError) as info:
            judge_pairwise(_pairs((CORRECT, WRONG)), engine=engine, cfg=JudgeConfig())
        assert info.value.message == (
            "judge pairwise: 2 of 2 judge outputs (100%) could not be used, more than judge.max_parse_fail=0.5; "
            "first: no_verdict in 'Hard to say.'"
        )
        assert "judge.max_parse_fail" in info.value.hint

    def test_joined_by_id_in_one_call_when_reversed(self):
        engine = Recording(ScriptedEngine(prefers_correct), reverse=True)
        out = judge_pairwise(_pairs((CORRECT, WRONG), (WRONG, CORRECT), ids=["z", "y"]), engine=engine, cfg=JudgeConfig())
        assert engine.calls == [["z|ab", "z|ba", "y|ab", "y|ba"]]
        assert out.select("pair_id", "verdicts_ab", "verdicts_ba", "judge_prefers").rows() == [
            ("z", ["chosen"], ["chosen"], "chosen"), ("y", ["rejected"], ["rejected"], "rejected"),
        ]

    def test_no_pairs_no_engine_call(self):
        engine = Recording(ScriptedEngine(always_a))
        out = judge_pairwise(_pairs(), engine=engine, cfg=JudgeConfig())
        assert out.height == 0 and "swap_consistent" in out.columns and engine.calls == []
