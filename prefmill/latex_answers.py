"""MATH-style answers for prefmill.answers: the last `\\boxed{...}`, one spelling per LaTeX answer, and
the tests that decide whether an answer is math (math-verify reads it), text or prose (it cannot).

MATH writes one answer many ways (`\\dfrac43`, `\\frac{4}{3}`, `\\left(2,\\infty\\right)`, `30^\\circ`,
`\\frac{270}7\\text{ degrees}`, `x \\in [-2,7]`). `canonical_latex` removes those spelling differences so
equal answers are equal strings (and math-verify sees clean input); a canonical answer is left as is.
"""

from __future__ import annotations

import re
from fractions import Fraction

_BOXED = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_REWRITES = [
    (re.compile(r"\\[dtc]frac(?![A-Za-z])"), r"\\frac"),
    (re.compile(r"\\(?:textbf|textit|textrm|textsf|textup|textnormal|mathrm|mathbf|mbox)(?=\s*\{)"), r"\\text"),
    (re.compile(r"\\(?:left|right|[bB]igg?[lr]?|displaystyle)(?![A-Za-z])"), ""),
    (re.compile(r"\\lbrace(?![A-Za-z])"), r"\\{"),
    (re.compile(r"\\rbrace(?![A-Za-z])"), r"\\}"),
    (re.compile(r"\s*\^\s*\{\s*\\circ\s*\}|\s*\^\s*\\circ(?![A-Za-z])|\\degree(?![A-Za-z])|°"), ""),  # 30^\circ
    (re.compile(r"(?<!\\)\\[,;:! ]|\\q?quad(?![A-Za-z])|~"), " "),  # spacing; `\\ ` (a row break) stays
]
_SHORT_ARGS = re.compile(r"\\(frac|sqrt)(?![A-Za-z])")
_ROOT_INDEX = re.compile(r"\s*\[[^\]]*\]")
_TOKEN = re.compile(r"\\[A-Za-z]+|[A-Za-z0-9]")
_UNIT_TAIL = re.compile(r"\\text\s*\{[^{}]*\}(?:\s*\^\s*\{?\d\}?)?\s*$")  # "\text{ cm}^2" after a value
_MEMBER_OF = re.compile(r"^[A-Za-z]\s*\\in\s*")  # "x \in [-2,7]" states the set [-2,7]
_DELIMITED = re.compile(r"^\\\((.*)\\\)$|^\\\[(.*)\\\]$", re.DOTALL)
_INNER_SPACE = re.compile(r"(?<=[(\[])\s+|\s+(?=[)\]])")  # "( 2, 3 )" -> "(2, 3)"
_WHOLE_TEXT = re.compile(r"\\text\s*\{([^{}]*)\}")
_CHOICE = re.compile(r"\(?([A-Ea-e])\)?")
# A choice given with its value, as AMC solutions write it: `\text{(A) } 5`, `\text{(C)} \frac{1}{2}`, `(D) 12`.
_CHOICE_AND_VALUE = re.compile(r"(?:\\text\s*\{\s*\(([A-Ea-e])\)\s*\}|\(([A-E])\))\s*\S.*")
# Names that are math even though they are words; any other run of 2+ letters standing apart is prose.
_MATH_WORDS = frozenset((
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "log", "ln", "lg", "exp", "sqrt", "pi", "inf", "infty", "oo", "max", "min", "gcd", "lcm", "mod", "deg",
))
_WORD = re.compile(r"(?<![\dA-Za-z\\])[A-Za-z]{2,}(?![A-Za-z\d^_])")
_NUMBER_LIST = re.compile(r"-?\d+(?:\.\d+)?(?:\s*,\s*-?\d+(?:\.\d+)?)+")
# A repeating decimal: 0.\overline{3}, 0.1\overline{6}, 2.\overline{142857} (math-verify cannot read \overline).
_REPEATING = re.compile(r"(?<![\d.])(-?)(\d*)\.(\d*)\s*\\overline\s*\{\s*(\d+)\s*\}")


def group_end(text: str, i: int) -> int | None:
    """Index just past the `}` that closes the `{` at text[i]; None when it never closes.

    Escaped braces (`\\{`, `\\}`) do not count, so `\\boxed{\\{1,2\\}}` closes where TeX closes it.
    """
    depth, j = 0, i
    while j < len(text):
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return None


def has_boxed(text: str) -> bool:
    return _BOXED.search(text) is not None


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` / `\\fbox{...}` (braces balanced) or `\\boxed 5`; None if unclosed."""
    found = list(_BOXED.finditer(text))
    if not found:
        return None
    i = found[-1].end()
    while i < len(text) and text[i] == " ":
        i += 1
    if i < len(text) and text[i] == "{":
        end = group_end(text, i)
        return text[i + 1 : end - 1] if end is not None else None
    token = re.match(r"[^\s$]+", text[i:]) if i > found[-1].end() else None  # `\boxed 5`, not `\boxed$`
    return token.group(0) if token else None


def _brace_short_args(text: str) -> str:
    """`\\frac43` -> `\\frac{4}{3}`, `\\sqrt2` -> `\\sqrt{2}`: TeX lets a one-token argument go unbraced.

    Only braces are inserted, never moved, so every `\\frac` (nested ones too) is handled in one pass.
    """
    inserts: list[tuple[int, str]] = []
    for m in _SHORT_ARGS.finditer(text):
        j = m.end()
        if m.group(1) == "sqrt" and (opt := _ROOT_INDEX.match(text, j)):  # \sqrt[3]{x}
            j = opt.end()
        for _ in range(2 if m.group(1) == "frac" else 1):
            while j < len(text) and text[j] == " ":
                j += 1
            if j < len(text) and text[j] == "{":
                end = group_end(text, j)
                if end is None:
                    break
                j = end
            elif token := _TOKEN.match(text, j):
                inserts += [(j, "{"), (token.end(), "}")]
                j = token.end()
            else:
                break
    if not inserts:
        return text
    out, last = [], 0
    for pos, brace in sorted(inserts, key=lambda p: p[0]):  # stable: "}" of one argument before "{" of the next
        out += [text[last:pos], brace]
        last = pos
    return "".join(out) + text[last:]


def _repeating_to_fraction(m: re.Match) -> str:
    """`0.1\\overline{6}` -> `\\frac{1}{6}`: the exact value of a repeating decimal."""
    sign, whole, fixed, period = m.groups()
    value = Fraction(int(whole or "0")) + Fraction(int(fixed or "0"), 10 ** len(fixed))
    value += Fraction(int(period), 10 ** len(fixed) * (10 ** len(period) - 1))
    if sign:
        value = -value
    if value.denominator == 1:
        return str(value.numerator)
    return f"{'-' if value < 0 else ''}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"


def canonical_latex(text: str) -> str:
    """One spelling of a LaTeX answer: no `\\dfrac`, `\\left`, spacing, degree signs, trailing units;
    a repeating decimal becomes its fraction."""
    text = " ".join(text.split())  # first, so "\\<tab>" is a TeX space like "\\ "
    if m := _DELIMITED.match(text):  # \(...\) or \[...\]
        text = (m.group(1) if m.group(1) is not None else m.group(2)).strip()
    if (m := _BOXED.match(text)) and text[m.end() :].lstrip().startswith("{"):  # the whole answer boxed
        start = len(text) - len(text[m.end() :].lstrip())
        if group_end(text, start) == len(text):
            text = text[start + 1 : -1].strip()
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    text = _brace_short_args(text)
    text = _REPEATING.sub(_repeating_to_fraction, text)
    while (m := _UNIT_TAIL.search(text)) and re.search(r"[\w})\]]\s*$", text[: m.start()]):
        text = text[: m.start()]
    text = _MEMBER_OF.sub("", text.strip())
    return _INNER_SPACE.sub("", " ".join(text.split()))


def prose_words(text: str) -> list[str]:
    """Words that are not math: `dollars`, `forty`, `Evelyn`; not `x`, `2ab`, `xy^2`, `sin`."""
    return [w for w in _WORD.findall(text) if w.lower() not in _MATH_WORDS]


def looks_like_math(text: str) -> bool:
    """A plain answer math-verify should read whole (`2x+1`, `(2, 3)`, `x^2`, `1, 2`): no prose, and
    letters, brackets or a list; pure arithmetic like `5 + 13 = 18` is left to the last-number rule."""
    if prose_words(text):
        return False
    return bool(re.search(r"[A-Za-z()\[\]{}^]", text)) or _NUMBER_LIST.fullmatch(text.strip()) is not None


def is_prose(answer: str) -> bool:
    """Words math-verify cannot read (`forty-two`, `abc`); explicit `\\text{...}` is text, not prose."""
    return "\\" not in answer and bool(prose_words(answer))


def text_key(answer: str) -> str | None:
    """How a text answer compares (`\\text{Evelyn}` = `Evelyn`, `(C)` = `C` = `\\text{(C) }7`, any case);
    None for math."""
    if choice := _CHOICE_AND_VALUE.fullmatch(answer):
        return (choice.group(1) or choice.group(2)).lower()
    whole = _WHOLE_TEXT.fullmatch(answer)
    inner = whole.group(1) if whole else (answer if "\\" not in answer else None)
    if inner is None:
        return None
    inner = inner.strip().strip(".").strip()
    if choice := _CHOICE.fullmatch(inner):  # a multiple-choice letter
        return choice.group(1).lower()
    if whole or prose_words(inner):
        return " ".join(inner.lower().split())
    return None
