"""Arithmetic in worked solutions: find the calculations a step shows, check them, and change one
so that the error carries through to the final answer (RISE's rule-based fallback, ground truth in tests).

A calculation is a GSM8K annotation ``<<48/2=24>>`` or an equation written in the text, ``48 / 2 = 24``,
``$10 x 5 = $50`` (operators ``+ - * / x × ÷``, evaluated with the usual precedence, exactly, in
fractions). Numbers are unsigned; a ``$`` before one and thousands commas are kept as written.
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from fractions import Fraction

from prefmill.config import RULE_ERROR_TYPES
from prefmill.tasks.solution_text import ANNOTATION, without_annotations

NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_OPERATOR = r"[-+*/x×÷]"
# `2x3` and `2 x 3` multiply; `x` inside a word does not (the lookarounds keep it between numbers).
_EXPRESSION = rf"\$?{NUMBER}(?:\s*{_OPERATOR}\s*\$?{NUMBER})+"
_WRITTEN = re.compile(rf"(?<![\w.,$])({_EXPRESSION})\s*=\s*(\$?)({NUMBER})(?!\d)")
_ANNOTATED = re.compile(rf"<<({_EXPRESSION})=(\$?)({NUMBER})>>")
_TERM = re.compile(rf"(\$?)({NUMBER})|({_OPERATOR})")
_BEFORE_ANNOTATION = re.compile(r"=\s*\$?\s*$")  # "... = <<48/2=24>>" or "... = $<<...>>"
_VISIBLE_OPERATOR = re.compile(r"(?<![A-Za-z])[-+*/×÷x](?![A-Za-z])")  # not the / of "snakes/jaguar"
_ANY_NUMBER = re.compile(rf"(?<![\w.])(\$?)({NUMBER})(?!\d)")
_ANSWER_LINE = re.compile(r"(?m)^[^\S\n]*####.*$")
MAX_TRIES = 300  # candidate changes per call: a long solution whose answer cannot move stays cheap
_TIMES, _DIVIDE = "*x×", "/÷"


def parse_number(text: str) -> Fraction:
    return Fraction(text.replace(",", "").lstrip("$"))


def _decimals(written: str) -> int:
    return len(written.split(".")[1]) if "." in written else 0


def format_number(value: Fraction, *, like: str = "") -> str:
    """`value` written like `like`: as many decimals when they are exact ("$10.00"), else an integer or
    at most 2 decimals; thousands commas when `like` has them."""
    comma = "," if "," in like else ""
    places = _decimals(like)
    if places and (value * 10**places).denominator == 1:
        return f"{float(value):{comma}.{places}f}"
    if value.denominator == 1:
        return f"{int(value):{comma}}"
    return f"{float(value):{comma}.2f}".rstrip("0").rstrip(".")


def _terms(expression: str) -> tuple[list[Fraction], list[str]]:
    numbers, operators = [], []
    for m in _TERM.finditer(expression):
        if m.group(2) is not None:
            numbers.append(parse_number(m.group(2)))
        else:
            operators.append(m.group(3))
    return numbers, operators


def evaluate(numbers: list[Fraction], operators: list[str]) -> Fraction | None:
    """`n0 op0 n1 op1 n2 ...` with * and / before + and -; None on division by zero."""
    sums: list[Fraction] = [numbers[0]]
    signs: list[int] = [1]
    for op, value in zip(operators, numbers[1:]):
        if op in _TIMES:
            sums[-1] *= value
        elif op in _DIVIDE:
            if value == 0:
                return None
            sums[-1] /= value
        else:
            sums.append(value)
            signs.append(1 if op == "+" else -1)
    return sum((s * v for s, v in zip(signs, sums)), Fraction(0))


@dataclass(frozen=True)
class Calculation:
    """One calculation shown in a text: `expression = result` with its character spans."""

    start: int
    end: int
    expression: str
    result: str
    expression_span: tuple[int, int]
    result_span: tuple[int, int]
    annotated: bool
    echo_numbers: tuple[tuple[int, int], ...] = ()
    """An annotation's written copy before it on its line ("4 houses * 3 gnomes = <<4*3=12>>"): the
    spans of its numbers, and of the operators between them (None where none shows)."""
    echo_operators: tuple[tuple[int, int] | None, ...] = ()

    @property
    def begin(self) -> int:
        """Where the calculation starts in the text, its written copy included."""
        return self.echo_numbers[0][0] if self.echo_numbers else self.start

    @property
    def computed(self) -> Fraction | None:
        return evaluate(*_terms(self.expression))

    @property
    def stated(self) -> Fraction:
        return parse_number(self.result)

    @property
    def checks(self) -> bool | None:
        """Whether the stated result is the expression's value, rounded as written (0.33 for 1/3);
        None when it cannot be computed."""
        computed = self.computed
        if computed is None:
            return None
        return abs(computed - self.stated) <= Fraction(1, 2 * 10 ** _decimals(self.result))


def _kinds(operators: list[str]) -> list[str]:
    return ["*" if op in _TIMES else "/" if op in _DIVIDE else op for op in operators]


def _echo(text: str, m: re.Match[str]) -> tuple[tuple, tuple]:
    """(number spans, operator spans) of annotation `m`'s written copy: the last numbers before the
    `=` that precedes it on its line, since that line's previous `=` or annotation, when they are the
    annotation's numbers in order; ((), ()) when there is no such copy."""
    line_start = text.rfind("\n", 0, m.start()) + 1
    equals = _BEFORE_ANNOTATION.search(text, line_start, m.start())
    if equals is None:
        return (), ()
    body_start = max(line_start, text.rfind("=", line_start, equals.start()) + 1, text.rfind(">>", line_start, equals.start()) + 2)
    real, real_operators = _terms(m.group(1))
    found = list(_ANY_NUMBER.finditer(text, body_start, equals.start()))[-len(real):]
    if len(found) != len(real) or [parse_number(n.group(2)) for n in found] != real:
        return (), ()
    operators = []
    for a, b, op in zip(found, found[1:], real_operators):
        shown = list(_VISIBLE_OPERATOR.finditer(text, a.end(), b.start()))
        operators.append(shown[0].span() if len(shown) == 1 and _kinds([shown[0].group()]) == _kinds([op]) else None)
    return tuple(n.span(2) for n in found), tuple(operators)


@functools.lru_cache(maxsize=64)
def calculations(text: str) -> tuple[Calculation, ...]:
    """Every calculation in `text`, in order: annotations (with their written copy) and written
    equations (none inside an annotation, none that is an annotation's copy). Cached: the injector
    carries every candidate change through the same text."""
    annotated = [
        Calculation(m.start(), m.end(), m.group(1), m.group(3), m.span(1), m.span(3), True, *_echo(text, m))
        for m in _ANNOTATED.finditer(text)
    ]
    taken = [m.span() for m in ANNOTATION.finditer(text)] + [(c.begin, c.start) for c in annotated]
    written = [
        Calculation(m.start(), m.end(), m.group(1), m.group(3), m.span(1), m.span(3), False)
        for m in _WRITTEN.finditer(text)
        if not any(s <= m.start() < e for s, e in taken)
    ]
    return tuple(sorted(annotated + written, key=lambda c: c.start))


def arithmetic_checks(text: str) -> bool | None:
    """False when some calculation in `text` is wrong, True when all check, None when it shows none."""
    verdicts = [c.checks for c in calculations(text)]
    verdicts = [v for v in verdicts if v is not None]
    if not verdicts:
        return None
    return all(verdicts)


# --- The rule-based injector ---


def _rewritten(expression: str, numbers: list[Fraction], operators: list[str]) -> str:
    """`expression` with the numbers and operators that differ replaced in place; the rest as written."""
    out, last, n, o = [], 0, 0, 0
    for m in _TERM.finditer(expression):
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
    numbers, operators = _terms(expression)
    if kind == "change_number":
        # A decimal moves in its last place (0.75 -> 0.8), a whole number by 1-9.
        units = [Fraction(1, 10 ** _decimals(m.group(2))) for m in _TERM.finditer(expression) if m.group(2)]
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
            times = next((o for o in operators if o in _TIMES), "*")
            swap = {"+": "-", "-": "+"}.get(op) or ("/" if op in _TIMES else times)
            yield numbers, operators[:j] + [swap] + operators[j + 1 :]
    elif kind == "swap_terms":
        order = [j for j, op in enumerate(operators) if op in "-" + _DIVIDE]
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
    old_numbers, old_operators = _terms(calc.expression)
    shown_times = next((text[s:e] for s, e in filter(None, calc.echo_operators) if text[s:e] in _TIMES), "*")
    parts = [(span, old, new, False) for span, old, new in zip(calc.echo_numbers, old_numbers, numbers)]
    parts += [(span, old, new, True) for span, old, new in zip(calc.echo_operators, old_operators, operators)]
    for span, old, new, is_operator in sorted((p for p in parts if p[0] is not None), key=lambda p: p[0][0]):
        out.append(text[position : span[0]])
        written = text[span[0] : span[1]]
        if not is_operator:
            out.append(written if old == new else format_number(new, like=written))
        else:
            out.append(written if _kinds([old]) == _kinds([new]) else shown_times if new in _TIMES else new)
        position = span[1]
    if any(span is None and _kinds([old]) != _kinds([new])
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
            numbers, operators = _terms(c.expression)
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
        plain = [m for m in _ANY_NUMBER.finditer(text, line_start, line_end)
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
    return {parse_number(m.group(2)) for m in _ANY_NUMBER.finditer(text)}


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
