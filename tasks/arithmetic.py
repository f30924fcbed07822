"""Arithmetic in worked solutions: find the calculations a step shows, check them, and change one
so that the error carries through to the final answer (RISE's rule-based fallback, ground truth in tests).

A calculation is a GSM8K annotation ``<<48/2=24>>`` or an equation written in the text, ``48 / 2 = 24``,
``$10 x 5 = $50`` (operators ``+ - * / x × ÷``, evaluated with the usual precedence, exactly, in
fractions). Numbers are unsigned; a ``$`` before one and thousands commas are kept as written.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from fractions import Fraction

NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_OPERATOR = r"[-+*/x×÷]"
# `2x3` and `2 x 3` multiply; `x` inside a word does not (the lookarounds keep it between numbers).
_EXPRESSION = rf"\$?{NUMBER}(?:\s*{_OPERATOR}\s*\$?{NUMBER})+"
_WRITTEN = re.compile(rf"(?<![\w.,$])({_EXPRESSION})\s*=\s*(\$?)({NUMBER})(?!\d)")
_ANNOTATED = re.compile(rf"<<({_EXPRESSION})=(\$?)({NUMBER})>>")
_TERM = re.compile(rf"(\$?)({NUMBER})|({_OPERATOR})")
_ECHO = re.compile(rf"({_EXPRESSION})\s*=\s*\$?\s*$")  # "48/2 = " written before "<<48/2=24>>"
_ANY_NUMBER = re.compile(rf"(?<![\w.])(\$?)({NUMBER})(?!\d)")
_TIMES, _DIVIDE = "*x×", "/÷"


def parse_number(text: str) -> Fraction:
    return Fraction(text.replace(",", "").lstrip("$"))


def format_number(value: Fraction, *, like: str = "") -> str:
    """`value` written plainly: an integer, else at most 2 decimals; commas when `like` has them."""
    if value.denominator == 1:
        whole = int(value)
        return f"{whole:,}" if "," in like else str(whole)
    text = f"{float(value):,.2f}" if "," in like else f"{float(value):.2f}"
    return text.rstrip("0").rstrip(".")


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


def _close(a: Fraction, b: Fraction) -> bool:
    """Equal up to the rounding a solution writes (0.33 for 1/3)."""
    return abs(a - b) <= Fraction(1, 100) * max(1, abs(b)) / 2 + Fraction(1, 200)


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

    @property
    def computed(self) -> Fraction | None:
        return evaluate(*_terms(self.expression))

    @property
    def stated(self) -> Fraction:
        return parse_number(self.result)

    @property
    def checks(self) -> bool | None:
        """Whether the stated result is what the expression gives; None when it cannot be computed."""
        computed = self.computed
        return None if computed is None else _close(computed, self.stated)


def calculations(text: str) -> list[Calculation]:
    """Every calculation in `text`, in order: annotations and written equations."""
    found = [
        Calculation(m.start(), m.end(), m.group(1), m.group(3), m.span(1), m.span(3), annotated=pattern is _ANNOTATED)
        for pattern in (_ANNOTATED, _WRITTEN)
        for m in pattern.finditer(text)
    ]
    annotations = [(c.start, c.end) for c in found if c.annotated]
    written = [c for c in found if not c.annotated and not any(s <= c.start < e for s, e in annotations)]
    return sorted([c for c in found if c.annotated] + written, key=lambda c: c.start)


def arithmetic_checks(text: str) -> bool | None:
    """False when some calculation in `text` is wrong, True when all check, None when it shows none."""
    verdicts = [c.checks for c in calculations(text)]
    verdicts = [v for v in verdicts if v is not None]
    if not verdicts:
        return None
    return all(verdicts)


# --- The rule-based injector ---

RULE_ERROR_TYPES = ("change_number", "change_operator", "swap_terms")


def _rewritten(expression: str, numbers: list[Fraction], operators: list[str]) -> str:
    """`expression` with its numbers and operators replaced in place, keeping spacing, `$` and commas."""
    out, last, n, o = [], 0, 0, 0
    for m in _TERM.finditer(expression):
        out.append(expression[last : m.start()])
        if m.group(2) is not None:
            out.append(m.group(1) + format_number(numbers[n], like=m.group(2)))
            n += 1
        else:
            out.append(operators[o])
            o += 1
        last = m.end()
    out.append(expression[last:])
    return "".join(out)


def _nice(value: Fraction | None, original: Fraction) -> bool:
    """A result a solution could plausibly write: non-negative when the original was, at most 2 decimals."""
    if value is None or value == original or (original >= 0 and value < 0):
        return False
    return (value * 100).denominator == 1


def _perturbations(numbers: list[Fraction], operators: list[str], kind: str, rng: random.Random):
    """Candidate (numbers, operators) after one change of `kind`, in a seeded order."""
    if kind == "change_number":
        options = [(i, d) for i in range(len(numbers)) for d in (*range(1, 10), *range(-9, 0))]
        rng.shuffle(options)
        for i, d in options:
            value = numbers[i] + d
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


def _propagate(text: str, changes: dict[Fraction, Fraction]) -> str:
    """`text` with every calculation fed a changed value recomputed and every changed value rewritten."""
    out, last = [], 0
    spans = [(c.start, c.end, c) for c in calculations(text)]
    numbers = [(m.start(), m.end(), m) for m in _ANY_NUMBER.finditer(text)
               if not any(s <= m.start() < e for s, e, _ in spans)]
    for start, end, item in sorted(spans + numbers, key=lambda t: t[0]):
        out.append(text[last:start])
        last = end
        if isinstance(item, Calculation):
            numbers_in, operators = _terms(item.expression)
            fed = [changes.get(v, v) for v in numbers_in]
            stated = item.stated
            computed = evaluate(fed, operators)
            if fed != numbers_in and item.checks and computed is not None and computed != stated:
                changes.setdefault(stated, computed)
            new_result = changes.get(stated, stated)
            expression = _rewritten(item.expression, fed, operators)
            result = format_number(new_result, like=item.result)
            segment = text[start:end]
            e0, e1 = item.expression_span[0] - start, item.expression_span[1] - start
            r0, r1 = item.result_span[0] - start, item.result_span[1] - start
            out.append(segment[:e0] + expression + segment[e1:r0] + result + segment[r1:])
        else:
            value = parse_number(item.group(2))
            out.append(item.group(1) + format_number(changes[value], like=item.group(2)) if value in changes else item.group())
    out.append(text[last:])
    return "".join(out)


def _echo_rewritten(step: str, calc: Calculation, numbers: list[Fraction], operators: list[str]) -> tuple[str, int]:
    """(`step` with the written copy of an annotated calculation, "48/2 = <<48/2=24>>", changed like the
    annotation so text and annotation agree; how far that moved the annotation)."""
    if not calc.annotated or not (echo := _ECHO.search(step[: calc.start])):
        return step, 0
    shown_numbers, shown_operators = _terms(echo.group(1))
    old_numbers, old_operators = _terms(calc.expression)
    kind = lambda op: "*" if op in _TIMES else "/" if op in _DIVIDE else op  # noqa: E731
    if shown_numbers != old_numbers or [kind(o) for o in shown_operators] != [kind(o) for o in old_operators]:
        return step, 0
    times = next((o for o in shown_operators if o in _TIMES), "*")
    divide = next((o for o in shown_operators if o in _DIVIDE), "/")
    styled = [times if o in _TIMES else divide if o in _DIVIDE else o for o in operators]
    rewritten = _rewritten(echo.group(1), numbers, styled)
    return step[: echo.start(1)] + rewritten + step[echo.end(1) :], len(rewritten) - len(echo.group(1))


@dataclass(frozen=True)
class RuleEdit:
    """A rule-based edit: the new text, which step changed (0-based), how, and that step's new text
    (it starts where the original step started)."""

    text: str
    step_index: int
    error_type: str
    step: str


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
    a seeded order; the first change that moves the final answer (`final_answer(text)`, compared as
    strings) wins; whole results are tried before decimals, and a final answer never turns negative.
    None when no calculation can be changed so that the final answer moves.
    """
    answer_of = final_answer or (lambda t: t)
    before = answer_of(text)
    order = list(range(len(steps)))
    rng.shuffle(order)
    for k in order:
        start, end = steps[k]
        for calc in calculations(text[start:end]):
            if not calc.checks:
                continue
            numbers, operators = _terms(calc.expression)
            options = [(n, o, evaluate(n, o)) for n, o in _perturbations(numbers, operators, error_type, rng)]
            options = [option for option in options if _nice(option[2], calc.stated)]
            # A whole result where the original was whole is the subtler error: try those first.
            options.sort(key=lambda option: calc.stated.denominator == 1 and option[2].denominator != 1)
            for new_numbers, new_operators, result in options:
                step = text[start:end]
                changes = {calc.stated: result}
                step, shift = _echo_rewritten(step, calc, new_numbers, new_operators)
                (e0, e1), (r0, r1) = ((i + shift for i in span) for span in (calc.expression_span, calc.result_span))
                edited = (
                    step[:e0] + _rewritten(calc.expression, new_numbers, new_operators) + step[e1:r0]
                    + format_number(result, like=calc.result) + _propagate(step[r1:], changes)
                )
                candidate = text[:start] + edited + _propagate(text[end:], changes)
                after = answer_of(candidate)
                if after not in (None, before) and (after.startswith("-") <= str(before).startswith("-")):
                    return RuleEdit(candidate, k, error_type, edited)
    return None
