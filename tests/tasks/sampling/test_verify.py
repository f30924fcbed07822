"""tasks/verify.py: answer extraction, normalisation, verdicts and the verify stage."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefmill.config import VerifyConfig
from prefmill.schemas.tables import SAMPLES
from prefmill.schemas.validate import polars_schema
from prefmill.answers import (
    answers_match,
    extract_answer,
    find_answer,
    judge,
    normalize_answer,
    reference_final_answer,
)
from prefmill.tasks.sampling.verify import verify

GSM8K_SOLUTION = (
    "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
    "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer\u2019s market.\n"
    "#### 18"
)


class TestFindAnswer:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("She has 9 eggs left.\n#### 18", ("18", "hashes")),
            ("#### $1,234", ("1234", "hashes")),
            ("#### 1,234.50", ("1234.50", "hashes")),
            ("#### -0.5", ("-0.5", "hashes")),
            ("#### 12 dollars", ("12", "hashes")),
            ("#### 18\nThen I noted 30 more.", ("18", "hashes")),
            ("#### 3\n#### 4", ("4", "hashes")),
            ("so \\boxed{18} it is", ("18", "boxed")),
            ("\\boxed{\\frac{1}{2}}", ("\\frac{1}{2}", "boxed")),
            ("x \\boxed{\\frac{3}{\\sqrt{4}}} y", ("\\frac{3}{\\sqrt{4}}", "boxed")),
            ("first \\boxed{1} then \\boxed{2}", ("2", "boxed")),
            ("$\\boxed{-5}$", ("-5", "boxed")),
            ("\\boxed{1,234}", ("1234", "boxed")),
            ("The answer is 18.", ("18", "answer_is")),
            ("the final answer is 42", ("42", "answer_is")),
            ("The answer is $1,234.", ("1234", "answer_is")),
            ("The answer is -$1,234.50.", ("-1234.50", "answer_is")),
            ("The answer is 3/4.", ("3/4", "answer_is")),
            ("The answer is .5", (".5", "answer_is")),
            ("The answer is 18 dollars.", ("18", "answer_is")),
            ("Final answer: 42", ("42", "answer_is")),
            ("final answer = 42", ("42", "answer_is")),
            ("Answer: 7", ("7", "answer_is")),
            ("The answer is forty-two.", ("forty-two", "answer_is")),
            ("She makes 18 dollars.", ("18", "trailing_number")),
            ("The total is $1,200.", ("1200", "trailing_number")),
            ("It is 1.5.", ("1.5", "trailing_number")),
            ("So 7 %", ("7", "trailing_number")),
            ("It costs 5 dollars each, so the total is 20", ("20", "trailing_number")),
            ("18", ("18", "trailing_number")),
            ("No number here", (None, None)),
            ("The 3 cats sat on the mat and slept all afternoon.", (None, None)),
            ("", (None, None)),
        ],
    )
    def test_catalogue(self, text, expected):
        assert find_answer(text) == expected

    def test_precedence_hashes_over_boxed_over_answer_is(self):
        assert find_answer("The answer is 1. \\boxed{2}\n#### 3") == ("3", "hashes")
        assert find_answer("The answer is 1. \\boxed{2}") == ("2", "boxed")

    def test_unbalanced_boxed_falls_back_to_the_trailing_number(self):
        assert find_answer("\\boxed{18") == ("18", "trailing_number")

    def test_empty_markers_state_no_answer(self):
        assert find_answer("\\boxed{}") == (None, "boxed")
        assert find_answer("#### ") == (None, "hashes")
    def test_trailing_fraction_is_kept_whole(self):
        assert find_answer("So she drank x = 3/4") == ("3/4", "trailing_number")
    def test_answer_is_takes_the_stated_number(self):
        assert extract_answer("The answer is 18 (9 eggs at $2 each).") == "18"
    def test_boxed_latex_thousands_separator(self):
        assert extract_answer("\\boxed{1{,}234}") == "1234"


class TestExtractAnswer:
    def test_returns_only_the_answer(self):
        assert extract_answer("Work.\n#### 1,000") == "1000"
        assert extract_answer("nothing to see") is None


class TestNormalizeAnswer:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("  18. ", "18"),
            ("$1,234", "1234"),
            ("1,234.", "1234"),
            ("$ 3 / 4 ", "3/4"),
            ("-7", "-7"),
            ("$\\frac{1}{2}$", "\\frac{1}{2}"),
            ("abc", "abc"),
            ("   ", None),
            ("", None),
            (".", None),
        ],
    )
    def test_cases(self, raw, expected):
        assert normalize_answer(raw) == expected


_number = st.one_of(
    st.integers(min_value=-10**9, max_value=10**9).map(Decimal),
    st.decimals(min_value=-10**6, max_value=10**6, places=2, allow_nan=False, allow_infinity=False),
)


def _formats(n: Decimal, *, commas: bool, dollar: bool) -> str:
    places = max(0, -n.as_tuple().exponent)
    body = f"{abs(n):,.{places}f}" if commas else f"{abs(n):.{places}f}"
    sign = "-" if n < 0 else ""
    return f"{sign}{'$' if dollar else ''}{body}"


class TestExtractorProperties:
    @settings(max_examples=100, deadline=None)
    @given(n=_number, commas=st.booleans(), dollar=st.booleans())
    def test_every_form_extracts_the_same_value_and_matches(self, n, commas, dollar):
        s = _formats(n, commas=commas, dollar=dollar)
        forms = [f"Work.\n#### {s}", f"The answer is {s}.", f"\\boxed{{{s}}}", f"So she earns {s} dollars."]
        extracted = {extract_answer(f) for f in forms}
        assert len(extracted) == 1, (forms, extracted)
        (value,) = extracted
        assert value is not None and "," not in value and "$" not in value
        assert Decimal(value) == n
        assert answers_match(str(n), value) is True

    @settings(max_examples=30, deadline=None)
    @given(n=st.integers(min_value=-10**6, max_value=10**6), delta=st.integers(min_value=1, max_value=1000))
    def test_a_different_number_does_not_match(self, n, delta):
        value = extract_answer(f"#### {n + delta:,}")
        assert answers_match(str(n), value) is False


class TestReferenceFinalAnswer:
    def test_gsm8k_worked_solution(self):
        assert reference_final_answer(GSM8K_SOLUTION) == "18"

    def test_worked_solution_with_commas(self):
        assert reference_final_answer("It costs 1000 + 234 = <<1000+234=1234>>1234.\n#### 1,234") == "1234"

    def test_boxed_solution(self):
        assert reference_final_answer("So \\boxed{\\frac{1}{2}}.") == "\\frac{1}{2}"

    @pytest.mark.parametrize(("bare", "expected"), [("18", "18"), (" 42 ", "42"), ("$1,000", "1000"), ("3/4", "3/4")])
    def test_bare_answer(self, bare, expected):
        assert reference_final_answer(bare) == expected

    def test_blank_reference_has_no_answer(self):
        assert reference_final_answer("  ") is None


class TestAnswersMatch:
    @pytest.mark.parametrize(
        ("reference", "candidate", "expected"),
        [
            ("18", "18.0", True),
            ("18", "36/2", True),
            ("1/2", "0.5", True),
            ("0.5", "\\frac{1}{2}", True),
            ("18", "19", False),
            ("18", "abc", None),
            ("abc", "18", None),
        ],
    )
    def test_cases(self, reference, candidate, expected):
        assert answers_match(reference, candidate) is expected


class TestJudge:
    def test_correct(self):
        assert judge("Work.\n#### 18", "18") == ("18", True, None)

    def test_wrong(self):
        assert judge("Work.\n#### 19", "18") == ("19", False, None)

    @pytest.mark.parametrize("completion", ["", "   \n\t"])
    def test_empty_completion(self, completion):
        assert judge(completion, "18") == (None, False, "empty_completion")

    def test_no_answer(self):
        assert judge("I am not sure how to solve this.", "18") == (None, False, "no_answer_found")

    def test_empty_marker_is_no_answer(self):
        assert judge("#### ", "18") == (None, False, "no_answer_found")

    def test_truncated_with_only_a_trailing_number(self):
        assert judge("Step 1: 3 + 4 = 7\nStep 2: 7 * 2 = 14", "14", truncated=True) == (None, False, "truncated")

    def test_same_text_not_truncated_is_judged(self):
        assert judge("Step 1: 3 + 4 = 7\nStep 2: 7 * 2 = 14", "14") == ("14", True, None)

    @pytest.mark.parametrize("text", ["Work.\n#### 18", "The answer is 18", "\\boxed{18}"])
    def test_truncated_with_an_explicit_answer_is_judged(self, text):
        assert judge(text, "18", truncated=True) == ("18", True, None)

    def test_no_reference(self):
        assert judge("#### 18", None) == ("18", False, "no_reference")

    def test_unparsable_answer(self):
        assert judge("The answer is forty-two.", "42") == ("forty-two", False, "unparsable_answer")

    def test_unparsable_reference(self):
        assert judge("#### 42", "forty-two") == ("42", False, "unparsable_answer")

    def test_fraction_equals_decimal(self):
        assert judge("The answer is 1/2.", "0.5") == ("1/2", True, None)
    def test_boxed_escaped_dollar(self):
        assert judge("She makes \\boxed{\\$18} a day.", "18") == ("18", True, None)


def _samples(rows: list[dict]) -> pl.DataFrame:
    """A samples frame with the columns tasks/generate.generate produces."""
    defaults = {
        "prompt": [{"role": "user", "content": "q"}], "seed": 7, "engine": "scripted:test", "num_tokens": 5,
        "mean_logprob": -0.5, "finish_reason": "stop", "error": None,
    }
    full = [defaults | r | {"sample_id": f"{r['prompt_id']}-{r['sample_index']}"} for r in rows]
    return pl.DataFrame(full, schema=polars_schema(SAMPLES))


class TestVerify:
    PROMPTS = pl.DataFrame(
        {
            "prompt_id": ["p1", "p2", "p3"],
            "question": ["q1", "q2", "q3"],
            "reference": [GSM8K_SOLUTION, "7", None],
            "reference_answer": ["18", "7", None],
            "source_row": [0, 1, 2],
        }
    )

    def test_verdicts_per_row(self):
        samples = _samples(
            [
                {"prompt_id": "p1", "sample_index": 0, "completion": "9 * 2 = 18\n#### 18"},
                {"prompt_id": "p1", "sample_index": 1, "completion": "9 * 3 = 27\n#### 27"},
                {"prompt_id": "p1", "sample_index": 2, "completion": "", "finish_reason": "error",
                 "error": "RuntimeError: boom", "num_tokens": 0, "mean_logprob": None},
                {"prompt_id": "p1", "sample_index": 3, "completion": "so far 9 then 18", "finish_reason": "length"},
                {"prompt_id": "p2", "sample_index": 0, "completion": "The answer is 7.0"},
                {"prompt_id": "p2", "sample_index": 1, "completion": "  "},
                {"prompt_id": "p2", "sample_index": 2, "completion": "no idea"},
                {"prompt_id": "p3", "sample_index": 0, "completion": "#### 5"},
            ]
        )

        out = verify(samples, self.PROMPTS, cfg=VerifyConfig())

        assert out.columns == samples.columns + ["reference_answer", "extracted", "correct", "verify_error"]
        assert out.select("sample_id", "reference_answer", "extracted", "correct", "verify_error").rows() == [
            ("p1-0", "18", "18", True, None),
            ("p1-1", "18", "27", False, None),
            ("p1-2", "18", None, False, "engine_error"),
            ("p1-3", "18", None, False, "truncated"),
            ("p2-0", "7", "7.0", True, None),
            ("p2-1", "7", None, False, "empty_completion"),
            ("p2-2", "7", None, False, "no_answer_found"),
            ("p3-0", None, "5", False, "no_reference"),
        ]

    def test_engine_error_wins_over_a_correct_looking_text(self):
        samples = _samples([{"prompt_id": "p2", "sample_index": 0, "completion": "#### 7", "error": "OOM"}])

        out = verify(samples, self.PROMPTS, cfg=VerifyConfig())

        assert out.select("extracted", "correct", "verify_error").row(0) == (None, False, "engine_error")

    def test_sample_of_unknown_prompt_has_no_reference(self):
        samples = _samples([{"prompt_id": "zz", "sample_index": 0, "completion": "#### 7"}])

        out = verify(samples, self.PROMPTS, cfg=VerifyConfig())

        assert out.select("reference_answer", "correct", "verify_error").row(0) == (None, False, "no_reference")

    def test_output_conforms_to_verified_schema(self):
        from prefmill.schemas.tables import VERIFIED
        from prefmill.schemas.validate import conform

        samples = _samples([{"prompt_id": "p1", "sample_index": 0, "completion": "#### 18"}])

        table = conform(verify(samples, self.PROMPTS, cfg=VerifyConfig()), VERIFIED, where="verify output")

        assert table.num_rows == 1 and table.column("correct").to_pylist() == [True]
