"""Calculations in solutions and the rule-based error injector (the ground truth RISE is tested against)."""

from __future__ import annotations

import random
import re
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prefmill.sources import read_table
from prefmill.rise_config import RULE_ERROR_TYPES
from prefmill.tasks.rise.arithmetic import arithmetic_checks, calculations, evaluate, format_number
from prefmill.tasks.rise.rule_injector import inject_error
from prefmill.tasks.preference.pairs import reference_as_solution
from prefmill.tasks.rise.plan import editable_steps
from prefmill.answers import answers_match, extract_answer, reference_final_answer
from tests.conftest import GSM8K


class TestCalculations:
    def test_annotations_and_written_equations_in_order(self):
        text = "She has 48/2 = <<48/2=24>>24 clips.\nThen $10 x 5 = $50 and 2+3*4 = 14."

        found = calculations(text)

        assert [(c.expression, c.result, c.annotated) for c in found] == [
            ("48/2", "24", True), ("$10 x 5", "50", False), ("2+3*4", "14", False),
        ]
        assert [text[slice(*c.result_span)] for c in found] == ["24", "50", "14"]

    def test_written_copy_of_an_annotation_is_not_a_second_calculation(self):
        assert len(calculations("48/2 = <<48/2=24>>24")) == 1

    def test_precedence_and_division_by_zero(self):
        assert evaluate([Fraction(2), Fraction(3), Fraction(4)], ["+", "*"]) == 14
        assert evaluate([Fraction(100), Fraction(50), Fraction(30)], ["-", "-"]) == 20
        assert evaluate([Fraction(1), Fraction(0)], ["/"]) is None

    @pytest.mark.parametrize(
        ("text", "checks"),
        [
            ("48/2 = 24", True),
            ("1/3 = 0.33 of the cake", True),  # rounded as solutions write it
            ("She earns 1200 * 12 = $14450.", False),  # off by 50: no rounding makes that
            ("48/2 = 26", False),
            ("<<48/2=26>>26", False),
            ("5 + 5 = 10, then 10 * 2 = 21", False),
            ("She has 12 apples.", None),
        ],
    )
    def test_arithmetic_checks(self, text, checks):
        assert arithmetic_checks(text) is checks

    @pytest.mark.parametrize(
        ("value", "like", "shown"),
        [(Fraction(24), "24", "24"), (Fraction(5, 2), "2", "2.5"), (Fraction(1, 3), "0.33", "0.33"),
         (Fraction(1200), "1,000", "1,200"), (Fraction(-3), "3", "-3"), (Fraction(23), "270.00", "23.00"),
         (Fraction(1, 8), "0.25", "0.12")],
    )
    def test_format_number(self, value, like, shown):
        assert format_number(value, like=like) == shown

    @given(st.integers(1, 999), st.integers(1, 999), st.sampled_from(["+", "-", "*", "x"]))
    def test_every_correct_written_equation_checks(self, a, b, op):
        result = {"+": a + b, "-": a - b, "*": a * b, "x": a * b}[op]
        if result < 0:
            return
        assert arithmetic_checks(f"so {a} {op} {b} = {result} apples") is True


def _solutions(limit: int, *, annotated: bool) -> list[tuple[str, str]]:
    rows = read_table(GSM8K / "train.jsonl").head(limit)
    return [(r if annotated else reference_as_solution(r), reference_final_answer(r)) for r in rows["answer"]]


class TestRuleInjector:
    @pytest.mark.parametrize("annotated", [False, True], ids=["as-shown", "annotated"])
    @pytest.mark.parametrize("error_type", RULE_ERROR_TYPES)
    def test_every_edit_of_200_gsm8k_solutions_is_verified_wrong(self, error_type, annotated):
        made = 0
        for i, (text, answer) in enumerate(_solutions(200, annotated=annotated)):
            steps = editable_steps(text)
            edit = inject_error(text, steps, error_type=error_type, rng=random.Random(i), final_answer=extract_answer)
            if edit is None:
                continue
            made += 1
            assert answers_match(answer, extract_answer(edit.text)) is False, (text, edit.text)
            start = steps[edit.step_index][0]
            assert edit.text[:start] == text[:start]  # nothing before the edited step changes
            assert edit.text[start:].startswith(edit.step) and edit.step != text[slice(*steps[edit.step_index])]
            assert edit.error_type == error_type
        assert made >= {"change_number": 140, "change_operator": 130, "swap_terms": 20}[error_type]

    def test_downstream_steps_are_recomputed(self):
        text = "Weng earns 60/12 = $5 per minute.\nWorking 50 minutes, she earned 5 x 50 = $250.\n#### 250"
        steps = editable_steps(text)
        edit = inject_error(text, steps, error_type="swap_terms", rng=random.Random(0), final_answer=extract_answer)

        assert edit.text == "Weng earns 12/60 = $0.2 per minute.\nWorking 50 minutes, she earned 0.2 x 50 = $10.\n#### 10"
        assert (edit.step_index, edit.step) == (0, "Weng earns 12/60 = $0.2 per minute.")

    def test_written_copy_of_an_annotation_changes_with_it(self):
        text = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nShe sold 48+24 = <<48+24=72>>72 clips.\n#### 72"
        steps = editable_steps(text)
        edit = inject_error(text, steps[:1], error_type="change_operator", rng=random.Random(1), final_answer=extract_answer)

        assert edit.step_index == 0 and edit.step.startswith("Natalia sold 48*2 = <<48*2=96>>96")
        assert edit.text.endswith("She sold 48+96 = <<48+96=144>>144 clips.\n#### 144")

    @pytest.mark.parametrize("error_type", RULE_ERROR_TYPES)
    @pytest.mark.parametrize("seed", range(5))
    def test_a_number_that_also_stands_for_another_quantity_is_never_rewritten(self, error_type, seed):
        text = "He buys 2 + 3 = 5 pens.\nEach pen costs $5, so he pays 5 * 5 = $25.\nHe works 5 days.\n#### 25"
        edit = inject_error(text, editable_steps(text), error_type=error_type, rng=random.Random(seed),
                            final_answer=extract_answer)
        assert edit is None or ("Each pen costs $5" in edit.text and "He works 5 days." in edit.text)

    def test_a_result_stated_before_its_calculation_changes_with_it(self):
        text = ("He eats 32 from the large pizzas because 2 x 16 = <<2*16=32>>32\n"
                "He eats 48 pieces because 32 + 16 = <<32+16=48>>48\n#### 48")
        steps = editable_steps(text)
        for seed in range(5):
            edit = inject_error(text, steps[:1], error_type="change_number", rng=random.Random(seed),
                                final_answer=extract_answer)
            first, second, answer = edit.text.split("\n")
            stated, shown_copy, result, copy = re.fullmatch(
                r"He eats (\S+) from the large pizzas because (\S+ x \S+) = <<(?:\S+)=(\S+)>>(\S+)", first).groups()
            assert stated == result == copy != "32" and shown_copy != "2 x 16"
            assert second.startswith(f"He eats {int(result) + 16} pieces because {result} + 16")
            assert answer == f"#### {int(result) + 16}"

    def test_no_division_by_zero_and_no_negative_amount_downstream(self):
        text = "She has 3 + 3 = 6 bags.\nEach bag gets 12 / 6 = 2 apples.\nIn all 6 + 2 = 8 things.\n#### 8"
        for seed in range(10):
            edit = inject_error(text, editable_steps(text), error_type="change_operator", rng=random.Random(seed),
                                final_answer=extract_answer)
            assert edit is not None and "/ 0" not in edit.text and not re.search(r"(?<![\d\s])-\d| -\d", edit.text)

    def test_untouched_numbers_keep_their_writing_and_decimals_move_in_their_last_place(self):
        text = "Pens cost 2.50 * 4 = $10.00 in all.\nShe buys 3 + 2 = 5 more.\n#### 5"
        steps = editable_steps(text)
        edit = inject_error(text, steps[1:], error_type="change_number", rng=random.Random(0), final_answer=extract_answer)
        assert edit.text.startswith("Pens cost 2.50 * 4 = $10.00 in all.\n")
        for seed in range(10):
            edit = inject_error(text, steps[:1], error_type="change_number", rng=random.Random(seed),
                                final_answer=lambda t: t)
            price = Fraction(re.match(r"Pens cost (\S+) \* (\S+) =", edit.text).group(1))
            assert price == Fraction("2.50") or abs(price - Fraction("2.50")) < 1  # 2.55, 2.45, ... not 7.50

    def test_only_the_hidden_annotation_would_change_so_no_edit(self):
        text = "There were <<3+16=19>>19 hats in all.\n#### 19"
        for error_type in RULE_ERROR_TYPES:
            assert inject_error(text, editable_steps(text), error_type=error_type, rng=random.Random(0),
                                final_answer=extract_answer) is None

    def test_a_written_copy_with_units_between_the_numbers_changes_too(self):
        text = "There were 3 green hats + 16 pink hats = <<3+16=19>>19 hats.\n#### 19"
        pattern = r"There were (\d+) green hats \+ (\d+) pink hats = <<(\d+)\+(\d+)=(\d+)>>(\d+) hats\.\n#### (\d+)"
        for seed in range(5):
            edit = inject_error(text, editable_steps(text), error_type="change_number", rng=random.Random(seed),
                                final_answer=extract_answer)
            a, b, a2, b2, result, copy, answer = re.fullmatch(pattern, edit.text).groups()
            assert (a, b) == (a2, b2) != ("3", "16") and result == copy == answer == str(int(a) + int(b))

    def test_a_long_solution_whose_answer_cannot_move_stays_cheap(self):
        import time

        text = "\n".join(f"Box {i} holds {i} + 1 = {i + 1} pens." for i in range(1, 201)) + "\nShe has 7 cats.\n#### 7"
        start = time.perf_counter()
        assert inject_error(text, editable_steps(text), error_type="change_number", rng=random.Random(0),
                            final_answer=extract_answer) is None
        assert time.perf_counter() - start < 20

    def test_no_calculation_no_edit(self):
        text = "She has twelve apples and eats them all.\n#### 0"
        assert inject_error(text, editable_steps(text), error_type="change_number", rng=random.Random(0),
                            final_answer=extract_answer) is None

    def test_unknown_rule_is_refused(self):
        text = "2+2 = 4\n#### 4"
        with pytest.raises(ValueError, match="no rule for error type 'delete_term'"):
            inject_error(text, editable_steps(text), error_type="delete_term", rng=random.Random(0))
