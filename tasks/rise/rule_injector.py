"""The rule-based RISE injector: change one calculation of a correct solution (a number, an operator,
the order of two terms) and carry the change through every later calculation and the final answer, so
the edit is wrong by construction. It only makes changes it can carry through unambiguously (see
`inject_error`). Used where no model edits (`rise.editor: rules`) or every model edit was dropped.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from fractions import Fraction

from prefmill.tasks.rise.arithmetic import (
    ANY_NUMBER,
    DIVIDE,
    TERM,
    TIMES,
    Calculation,
    calculations,
    decimals,
    evaluate,
    format_number,
    operator_kinds,
    parse_number,
    terms,
)
from prefmill.tasks.solution_text import without_annotations

from prefmill.rise_config import RULE_ERROR_TYPES

MAX_TRIES = 300  # candidate changes per call: a long solution whose answer cannot move stays cheap



def _rewritten(expression: str, numbers: list[Fraction], operators: list[str]) -> str:
    """`expression` with the numbers and operators that differ replaced in place; the rest as written."""
    out, last, n, o = [], 0, 0, 0
    for m in TERM.finditer(expression):
        out.append(expression[last : m.start()])
        if m.group(2) is not None:
            same = parse_number(m.group(2)) == numbers[n]
            out.append(m.group() if same else m.group(1) + format_number(numbers[n], like=m.group(2)))
            n += 1
        else:
            out.append(operators[o])
            o += 1
        last = m.end()
    out.append(expression[last:])
    return "".join(out)


def _plausible(value: Fraction | None, original: Fraction) -> bool:
    """A result a solution could write: non-negative when the original was, at most 2 decimals."""
    return value is not None and not (original >= 0 > value) and (value * 100).denominator == 1


def _perturbations(expression: str, kind: str, rng: random.Random):
    """Candidate (numbers, operators) after one change of `kind`, in a seeded order."""
    numbers, operators = terms(expression)
    if kind == "change_number":
        # A decimal moves in its last place (0.75 -> 0.8), a whole number by 1-9.
        units = [Fraction(1, 10 ** decimals(m.group(2))) for m in TERM.finditer(expression) if m.group(2)]
        options = [(i, d) for i in range(len(numbers)) for d in (*range(1, 10), *range(-9, 0))]
        rng.shuffle(options)
        for i, d in options:
            value = numbers[i] + d * units[i] * (5 if units[i] < 1 else 1)
            if value > 0:
                yield numbers[:i] + [value] + numbers[i + 1 :], operators
    elif kind == "change_operator":
        order = list(range(len(operators)))
        rng.shuffle(order)
        for j in order:
            op = operators[j]
            times = next((o for o in operators if o in TIMES), "*")
            swap = {"+": "-", "-": "+"}.get(op) or ("/" if op in TIMES else times)
            yield numbers, operators[:j] + [swap] + operators[j + 1 :]
    elif kind == "swap_terms":
        order = [j for j, op in enumerate(operators) if op in "-" + DIVIDE]
        rng.shuffle(order)
        for j in order:
            swapped = list(numbers)
            swapped[j], swapped[j + 1] = swapped[j + 1], swapped[j]
            yield swapped, operators
    else:
        raise ValueError(f"rule-based injector: no rule for error type {kind!r}; rules: {', '.join(RULE_ERROR_TYPES)}")


class _Unclear(Exception):
    """The change cannot be carried through unambiguously: a changed value also stands for something
    else in the text, a later calculation divides by zero, or an amount turns negative."""


def _on_answer_line(text: str, position: int) -> bool:
    line_start = text.rfind("\n", 0, position) + 1
    return text[line_start:position].lstrip().startswith("####")


def _rewrite(text: str, calc: Calculation, numbers: list[Fraction], operators: list[str], result: Fraction) -> str:
    """`text[calc.begin:calc.end]` with the calculation's numbers, operators and result changed, its
    written copy (in the copy's own operator symbols) too; what did not change stays as written."""
    out, position = [], calc.begin
    old_numbers, old_operators = terms(calc.expression)
    shown_times = next((text[s:e] for s, e in filter(None, calc.echo_operators) if text[s:e] in TIMES), "*")
    parts = [(span, old, new, False) for span, old, new in zip(calc.echo_numbers, old_numbers, numbers)]
    parts += [(span, old, new, True) for span, old, new in zip(calc.echo_operators, old_operators, operators)]
    for span, old, new, is_operator in sorted((p for p in parts if p[0] is not None), key=lambda p: p[0][0]):
        out.append(text[position : span[0]])
        written = text[span[0] : span[1]]
        if not is_operator:
            out.append(written if old == new else format_number(new, like=written))
        else:
            out.append(written if operator_kinds([old]) == operator_kinds([new]) else shown_times if new in TIMES else new)
        position = span[1]
    if any(span is None and operator_kinds([old]) != operator_kinds([new])
           for span, old, new in zip(calc.echo_operators, old_operators, operators)):
        raise _Unclear  # the changed operator does not show in the written copy
    out.append(text[position : calc.expression_span[0]])
    shown = calc.result if result == calc.stated else format_number(result, like=calc.result)
    out += [_rewritten(calc.expression, numbers, operators), text[calc.expression_span[1] : calc.result_span[0]],
            shown, text[calc.result_span[1] : calc.end]]
    return "".join(out)


@dataclass(frozen=True)
class _Change:
    """The injected change: the calculation starting at `start` gets these numbers and operators."""

    start: int
    numbers: list[Fraction]
    operators: list[str]


def _propagate(text: str, changes: dict[Fraction, Fraction], *, begin: int = 0, change: _Change | None = None) -> str:
    """`text[begin:]` with `change` applied, every calculation fed a changed value recomputed (new
    values join `changes`: old -> new) and the copies of a changed result rewritten; raises `_Unclear`.

    Line by line: a number on a line whose calculation changed that value is a copy of its result
    ("He eats 32 ... because 2 x 16 = 32", ">>32"); so is the `####` answer. The same number anywhere
    else ("Each pen costs $5" after a result of 5) may be another quantity: unclear.
    """
    calcs = [c for c in calculations(text) if c.begin >= begin]
    out = []
    position = begin
    for line in re.finditer(r"[^\n]*\n?", text[begin:]):
        line_start, line_end = begin + line.start(), begin + line.end()
        if line_start == line_end:
            break
        here = [c for c in calcs if line_start <= c.begin < line_end]
        produced: set[Fraction] = set()
        rewritten: dict[int, str] = {}
        for c in here:
            numbers, operators = terms(c.expression)
            fed, ops = ([*change.numbers], [*change.operators]) if change and c.start == change.start else (
                [changes.get(v, v) for v in numbers], operators)
            result = c.stated
            if (fed, ops) != (numbers, operators):
                if not c.checks:
                    raise _Unclear
                result = evaluate(fed, ops)
                if result is None or c.stated >= 0 > result:
                    raise _Unclear
                if result != c.stated:
                    changes.setdefault(c.stated, result)
                    produced.add(c.stated)
            elif c.stated in changes:  # an untouched calculation giving a changed value: two meanings
                raise _Unclear
            rewritten[c.begin] = _rewrite(text, c, fed, ops, result)
        spans = [(c.begin, c.end) for c in here]
        plain = [m for m in ANY_NUMBER.finditer(text, line_start, line_end)
                 if not any(s <= m.start() < e for s, e in spans)]
        items = sorted([(c.begin, c.end, rewritten[c.begin]) for c in here] + [(m.start(), m.end(), m) for m in plain],
                       key=lambda item: item[0])
        for start, end, item in items:
            out.append(text[position:start])
            position = end
            if isinstance(item, str):
                out.append(item)
                continue
            value = parse_number(item.group(2))
            if value not in changes:
                out.append(item.group())
            elif value in produced or _on_answer_line(text, start):
                out.append(item.group(1) + format_number(changes[value], like=item.group(2)))
            else:
                raise _Unclear
    out.append(text[position:])
    return "".join(out)


@dataclass(frozen=True)
class RuleEdit:
    """A rule-based edit: the new text, which step changed (0-based), how, and that step's new text
    (it starts where the original step started)."""

    text: str
    step_index: int
    error_type: str
    step: str


def _given(text: str) -> set[Fraction]:
    """Every number written in `text`."""
    return {parse_number(m.group(2)) for m in ANY_NUMBER.finditer(text)}


def inject_error(
    text: str,
    steps: list[tuple[int, int]],
    *,
    error_type: str,
    rng: random.Random,
    final_answer=None,
) -> RuleEdit | None:
    """Change one calculation of one step by `error_type` and recompute everything after it.

    `steps` are the text's step spans (tasks.steps.split_steps). Steps and calculations are tried in
    a seeded order, at most `MAX_TRIES` changes; the first that moves the final answer
    (`final_answer(text)`, compared as strings) and can be carried through unambiguously wins. Whole
    results are tried before decimals; no amount turns negative. A calculation whose result is also a
    number written before it is not changed (which of them would later steps use?). None when no
    calculation can be changed so.
    """
    answer_of = final_answer or (lambda t: t)
    before = answer_of(text)
    order = list(range(len(steps)))
    rng.shuffle(order)
    tries = 0
    for k in order:
        start, end = steps[k]
        given = _given(without_annotations(text[:start]))
        for calc in calculations(text[start:end]):
            if not calc.checks or calc.stated in given:
                continue
            options = [(n, o, evaluate(n, o)) for n, o in _perturbations(calc.expression, error_type, rng)]
            options = [option for option in options if option[2] != calc.stated and _plausible(option[2], calc.stated)]
            # A whole result where the original was whole is the subtler error: try those first.
            options.sort(key=lambda option: calc.stated.denominator == 1 and option[2].denominator != 1)
            for new_numbers, new_operators, result in options:
                tries += 1
                if tries > MAX_TRIES:
                    return None
                if calc.annotated and not calc.echo_numbers:
                    break  # only the hidden annotation would change: the error's kind would not show
                changes: dict[Fraction, Fraction] = {}
                change = _Change(start + calc.start, new_numbers, new_operators)
                try:
                    edited = _propagate(text[:end], changes, begin=start, change=change)
                    candidate = text[:start] + edited + _propagate(text, changes, begin=end)
                except _Unclear:
                    continue
                after = answer_of(candidate)
                if after not in (None, before) and (after.startswith("-") <= str(before).startswith("-")):
                    return RuleEdit(candidate, k, error_type, edited)
    return None
