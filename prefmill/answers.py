"""Reading and comparing final answers: extraction from a solution, math-verify equivalence, and the
verdict on one completion or a table of them. Shared by the verify stage, RISE, step labelling and
`prefmill verify`.

Extraction order follows how solutions end in practice: GSM8K's `#### 18`, LaTeX `\\boxed{18}`,
"The answer is 18", else the last number in the text ($, commas and units stripped). MATH answers
(`\\dfrac43`, `(2,\\infty)`, `\\text{Evelyn}`) are brought to one spelling by prefmill.latex_answers and
compared by math-verify's LaTeX reader; text answers compare as text, and an answer always equals itself.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

import polars as pl
from math_verify import LatexExtractionConfig
from math_verify import parse as mv_parse
from math_verify import verify as mv_verify

from prefmill.config import VerifyConfig
from prefmill.latex_answers import (
    canonical_latex,
    has_boxed,
    is_prose,
    last_boxed,
    looks_like_math,
    text_key,
)

# verify_error values: why a sample has no verdict of its own (it then counts as incorrect).
EMPTY_COMPLETION = "empty_completion"
NO_ANSWER_FOUND = "no_answer_found"
UNPARSABLE_ANSWER = "unparsable_answer"
NO_REFERENCE = "no_reference"
ENGINE_ERROR = "engine_error"
TRUNCATED = "truncated"  # cut at max_tokens and no explicit answer: a trailing number there is mid-work

_HASHES = re.compile(r"####\s*([^\n]*)")
_ANSWER_IS = re.compile(
    r"(?:the\s+(?:final\s+)?answer\s+is|final\s+answer\s*[:=]|answer\s*[:=])\s*:?\s*([^\n]+)", re.IGNORECASE
)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_FRACTION = re.compile(r"-?\d+\s*/\s*\d+")
# A number closing the text, maybe followed by a unit or two and a full stop: "... is 18 dollars."
_TRAILING_NUMBER = re.compile(
    r"(-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?)\s*(?:[A-Za-z%]+\s*){0,2}[.!]?\s*$"
)
_LATEX_NOISE = (("{,}", ","), ("\\$", ""), ("\\,", ""), ("\\!", ""), ("\\%", ""), ("$", ""))
# A GSM8K amount: thousands grouped by commas (a bare "2,3" is a list), maybe a percent sign.
_AMOUNT = re.compile(r"(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+)\s*%?")
_PLAIN_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:/\d+)?")
_INTEGER = re.compile(r"-?[0-9]{1,30}")
# Arithmetic with a factorial (`5!`, `10!/(3!7!)`): math, not a number followed by a "!".
_FACTORIAL = re.compile(r"(?=.*[\d)]!)[\d\s+\-*/()!^]+")
# "3 + 4 i": math-verify reads a spaced "4 i" with another symbol i than "4i", so the two never match.
_SPACED_FACTOR = re.compile(r"(?<=\d) +(?=[A-Za-z](?![A-Za-z]))")
_PLAIN_PI = re.compile(r"(?<![A-Za-z\\])pi(?![A-Za-z])")  # "2pi", "pi/2": LaTeX reads a bare pi as p*i
_MATH_SPAN = re.compile(r"\$([^$]+)\$|\\\((.+?)\\\)")
# Wrapped in $...$ an answer reaches math-verify's LaTeX reader whole; its plain-number reader would
# take the 2 out of "[-2, 2]" or "2\\sqrt{2}".
_LATEX_ONLY = (LatexExtractionConfig(boxed_match_priority=0),)


def normalize_answer(raw: str) -> str | None:
    """Reduce a candidate answer to what math-verify can parse: a number, a fraction or LaTeX.

    LaTeX gets one spelling (canonical_latex); plain text that reads as math (`2x+1`, `[-2, 2]`) stays
    whole; other plain text keeps GSM8K's rule: its last number, commas and units dropped.
    """
    text = raw
    for noise, replacement in _LATEX_NOISE:
        text = text.replace(noise, replacement)
    if "\\" in text or "°" in text:
        text = canonical_latex(text)
    text = " ".join(text.split()).rstrip(".").strip()
    if not text:
        return None
    if "\\" in text:
        return text
    if m := _FRACTION.fullmatch(text):
        return m.group(0).replace(" ", "")
    if _FACTORIAL.fullmatch(text):
        return text
    if m := _AMOUNT.fullmatch(text):
        return m.group(1).replace(",", "")
    if looks_like_math(text):
        return _PLAIN_PI.sub(r"\\pi", text)
    numbers = _NUMBER.findall(text)
    if numbers:
        return numbers[-1].replace(",", "").rstrip(".")
    return text


def _stated(phrase: str) -> str:
    """What follows "the answer is": a $...$ formula or math as written, else up to a bracket, and
    the result when it is an equation ("18 (9 eggs at $2 each)", "3 + 4 = 7")."""
    if m := _MATH_SPAN.search(phrase):
        return m.group(1) if m.group(1) is not None else m.group(2)
    body = phrase.strip().rstrip(".")
    if "\\" in body or looks_like_math(body.replace("$", "")):
        return body
    phrase = re.split(r"[(;]", phrase, maxsplit=1)[0]
    phrase = phrase.rsplit("=", 1)[-1]
    if m := _FRACTION.search(phrase.replace("$", "")) or _NUMBER.search(phrase.replace("$", "")):
        return m.group(0)
    return phrase


def find_answer(text: str) -> tuple[str | None, str | None]:
    """(normalised final answer, how it was found) or (None, None) when the text states none.

    `how` is one of `hashes`, `boxed`, `answer_is`, `trailing_number`; only the last one is a guess.
    """
    if hashes := _HASHES.findall(text):
        return normalize_answer(hashes[-1].rstrip().rstrip("!")), "hashes"  # "#### 18!" is 18, not 18!
    if (boxed := last_boxed(text)) is not None:
        return normalize_answer(boxed), "boxed"
    if said := _ANSWER_IS.findall(text):
        return normalize_answer(_stated(said[-1])), "answer_is"
    if m := _TRAILING_NUMBER.search(text.replace("$", "")):
        return normalize_answer(m.group(1)), "trailing_number"
    return None, None


EXPLICIT = ("hashes", "boxed", "answer_is")  # how `find_answer` found a stated answer (not a trailing guess)


def states_answer(text: str) -> bool:
    """The text states its final answer (`#### x`, `\\boxed{x}`, "the answer is x"); a number it merely
    stops at ("... = $27 and") is a guess."""
    return find_answer(text)[1] in EXPLICIT


def extract_answer(text: str) -> str | None:
    """The final answer stated in a solution, normalised; None when it states none."""
    return find_answer(text)[0]


def reference_final_answer(reference: str) -> str | None:
    """A reference is a worked solution ending `#### x` or a bare answer; either gives x."""
    if "####" in reference or has_boxed(reference):
        return extract_answer(reference)
    return normalize_answer(reference)


def _timeout(seconds: int) -> int | None:
    # math-verify times out with SIGALRM, which only the main thread may use.
    return seconds if threading.current_thread() is threading.main_thread() else None


@lru_cache(maxsize=8192)
def _parsed(answer: str, timeout: int | None) -> tuple | None:
    """math-verify's reading of a normalised answer, cached: a reference is parsed once, not per sample.

    Plain numbers take math-verify's number reader as before (fast, GSM8K); the rest its LaTeX reader.
    parse() catches its own errors and timeouts (raise_on_error=False) and then returns [].
    """
    if _PLAIN_NUMBER.fullmatch(answer):
        found = mv_parse(re.sub(r"^(-?)\.", r"\g<1>0.", answer), parsing_timeout=timeout)  # ".5" reads as 0.5
    else:
        latex = _SPACED_FACTOR.sub("", answer)
        found = mv_parse(f"${latex}$", extraction_config=_LATEX_ONLY, parsing_timeout=timeout)
    # Only a string back means no formula was read: the string alone would just repeat the input.
    return tuple(found) if any(not isinstance(x, str) for x in found) else None


def answers_match(reference: str, candidate: str, *, timeout_seconds: int = 5) -> bool | None:
    """Equivalence of two answers (18 == 18.0 == 36/2, \\frac43 == 4/3, \\text{(C)} == C); None when
    either side cannot be read (empty, or prose such as `forty-two` that is not the other answer)."""
    gold, pred = normalize_answer(reference), normalize_answer(candidate)
    if gold is None or pred is None:
        return None
    if gold == pred:
        return True
    if _INTEGER.fullmatch(gold) and _INTEGER.fullmatch(pred):  # the common case (GSM8K, votes): no parsing
        return int(gold) == int(pred)
    gold_text, pred_text = text_key(gold), text_key(pred)
    if gold_text is not None and pred_text is not None:
        return gold_text == pred_text
    if is_prose(gold) or is_prose(pred):
        return None
    t = _timeout(timeout_seconds)
    gold_parsed, pred_parsed = _parsed(gold, t), _parsed(pred, t)
    if gold_parsed is None or pred_parsed is None:
        return None
    # verify() also catches its own errors and timeouts, answering False. An inequality states the set it
    # holds on: `x > 2` is (2, \\infty) and `-3 < x \\le 4` is (-3, 4].
    return bool(mv_verify(list(gold_parsed), list(pred_parsed), allow_set_relation_comp=True, timeout_seconds=t))


def judge(
    completion: str, reference_answer: str | None, *, truncated: bool = False, timeout_seconds: int = 5
) -> tuple[str | None, bool, str | None]:
    """(extracted answer, correct, verify_error) for one completion."""
    if not completion.strip():
        return None, False, EMPTY_COMPLETION
    extracted, how = find_answer(completion)
    if truncated and how == "trailing_number":
        return None, False, TRUNCATED
    if extracted is None:
        return None, False, NO_ANSWER_FOUND
    if reference_answer is None:
        return extracted, False, NO_REFERENCE
    verdict = answers_match(reference_answer, extracted, timeout_seconds=timeout_seconds)
    if verdict is None:
        return extracted, False, UNPARSABLE_ANSWER
    return extracted, verdict, None


def verify_rows(
    frame: pl.DataFrame,
    *,
    completion_field: str,
    reference_field: str,
    cfg: VerifyConfig,
    error_field: str | None = None,
    finish_field: str | None = None,
) -> pl.DataFrame:
    """Add `reference_answer`, `extracted`, `correct`, `verify_error` to every row.

    The reference may be a worked solution or a bare answer. Rows whose `error_field` is set (a
    request the engine failed) stay, as incorrect with `verify_error="engine_error"`.
    """
    references = [reference_final_answer(r) if r is not None else None for r in frame[reference_field]]
    errors = frame[error_field] if error_field else [None] * frame.height
    finishes = frame[finish_field] if finish_field else [None] * frame.height
    verdicts = [
        (None, False, ENGINE_ERROR)
        if error is not None
        else judge(text or "", ref, truncated=finish == "length", timeout_seconds=cfg.timeout_seconds)
        for text, ref, error, finish in zip(frame[completion_field], references, errors, finishes)
    ]
    return frame.with_columns(
        pl.Series("reference_answer", references, dtype=pl.String),
        pl.Series("extracted", [v[0] for v in verdicts], dtype=pl.String),
        pl.Series("correct", [v[1] for v in verdicts], dtype=pl.Boolean),
        pl.Series("verify_error", [v[2] for v in verdicts], dtype=pl.String),
    )
