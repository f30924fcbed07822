"""Arithmetic in worked solutions: find the calculations a step shows and check them (the rule-based
injector, tasks.rise.rule_injector, changes one; edit checks ask whether an edited step still checks out).

A calculation is a GSM8K annotation ``<<48/2=24>>`` or an equation written in the text, ``48 / 2 = 24``,
``$10 x 5 = $50`` (operators ``+ - * / x × ÷``, evaluated with the usual precedence, exactly, in
fractions). Numbers are unsigned; a ``$`` before one and thousands commas are kept as written.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from fractions import Fraction

from prefmill.tasks.solution_text import ANNOTATION

NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_OPERATOR = r"[-+*/x×÷]"
# `2x3` and `2 x 3` multiply; `x` inside a word does not (the lookarounds keep it between numbers).
_EXPRESSION = rf"\$?{NUMBER}(?:\s*{_OPERATOR}\s*\$?{NUMBER})+"
_WRITTEN = re.compile(rf"(?<![\w.,$])({_EXPRESSION})\s*=\s*(\$?)({NUMBER})(?!\d)")
_ANNOTATED = re.compile(rf"<<({_EXPRESSION})=(\$?)({NUMBER})>>")
TERM = re.compile(rf"(\$?)({NUMBER})|({_OPERATOR})")
_BEFORE_ANNOTATION = re.compile(r"=\s*\$?\s*$")  # "... = <<48/2=24>>" or "... = $<<...>>"
_VISIBLE_OPERATOR = re.compile(r"(?<![A-Za-z])[-+*/×÷x](?![A-Za-z])")  # not the / of "snakes/jaguar"
ANY_NUMBER = re.compile(rf"(?<![\w.])(\$?)({NUMBER})(?!\d)")
_ANSWER_LINE = re.compile(r"(?m)^[^\S\n]*####.*$")
TIMES, DIVIDE = "*x×", "/÷"


def parse_number(text: str) -> Fraction:
    return Fraction(text.replace(",", "").lstrip("$"))


def decimals(written: str) -> int:
    return len(written.split(".")[1]) if "." in written else 0


def format_number(value: Fraction, *, like: str = "") -> str:
    """`value` written like `like`: as many decimals when they are exact ("$10.00"), else an integer or
    at most 2 decimals; thousands commas when `like` has them."""
    comma = "," if "," in like else ""
    places = decimals(like)
    if places and (value * 10**places).denominator == 1:
        return f"{float(value):{comma}.{places}f}"
    if value.denominator == 1:
        return f"{int(value):{comma}}"
    return f"{float(value):{comma}.2f}".rstrip("0").rstrip(".")


def terms(expression: str) -> tuple[list[Fraction], list[str]]:
    numbers, operators = [], []
    for m in TERM.finditer(expression):
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
        if op in TIMES:
            sums[-1] *= value
        elif op in DIVIDE:
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
        return evaluate(*terms(self.expression))

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
        return abs(computed - self.stated) <= Fraction(1, 2 * 10 ** decimals(self.result))


def operator_kinds(operators: list[str]) -> list[str]:
    return ["*" if op in TIMES else "/" if op in DIVIDE else op for op in operators]


def _echo(text: str, m: re.Match[str]) -> tuple[tuple, tuple]:
    """(number spans, operator spans) of annotation `m`'s written copy: the last numbers before the
    `=` that precedes it on its line, since that line's previous `=` or annotation, when they are the
    annotation's numbers in order; ((), ()) when there is no such copy."""
    line_start = text.rfind("\n", 0, m.start()) + 1
    equals = _BEFORE_ANNOTATION.search(text, line_start, m.start())
    if equals is None:
        return (), ()
    body_start = max(line_start, text.rfind("=", line_start, equals.start()) + 1, text.rfind(">>", line_start, equals.start()) + 2)
    real, real_operators = terms(m.group(1))
    found = list(ANY_NUMBER.finditer(text, body_start, equals.start()))[-len(real):]
    if len(found) != len(real) or [parse_number(n.group(2)) for n in found] != real:
        return (), ()
    operators = []
    for a, b, op in zip(found, found[1:], real_operators):
        shown = list(_VISIBLE_OPERATOR.finditer(text, a.end(), b.start()))
        operators.append(shown[0].span() if len(shown) == 1 and operator_kinds([shown[0].group()]) == operator_kinds([op]) else None)
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
