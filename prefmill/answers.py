"""Reading and comparing final answers: extraction from a solution, math-verify equivalence, and the
verdict on one completion or a table of them. Shared by the verify stage, RISE, step labelling and
`prefmill verify`.

Extraction order follows how solutions end in practice: GSM8K's `#### 18`, LaTeX `\\boxed{18}`,
"The answer is 18", else the last number in the text ($, commas and units stripped).
"""

from __future__ import annotations

import re
import threading

import polars as pl
from math_verify import parse as mv_parse
from math_verify import verify as mv_verify

from prefmill.config import VerifyConfig

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
_LATEX_NOISE = (("{,}", ","), ("\\$", ""), ("\\,", ""), ("\\!", ""), ("\\%", ""))


def _last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}`, braces balanced."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


def normalize_answer(raw: str) -> str | None:
    """Reduce a candidate answer to what math-verify can parse: a number, a fraction or LaTeX."""
    text = raw.strip().rstrip(".").strip()
    for noise, replacement in _LATEX_NOISE:
        text = text.replace(noise, replacement)
    if not text:
        return None
    if "\\" in text:
        return text.strip("$ ")
    if m := _FRACTION.fullmatch(text.replace("$", "").strip()):
        return m.group(0).replace(" ", "")
    numbers = _NUMBER.findall(text.replace("$", ""))
    if numbers:
        return numbers[-1].replace(",", "").rstrip(".")
    return text


def _stated(phrase: str) -> str:
    """What follows "the answer is": up to a bracket, and the result when it is an equation."""
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
        return normalize_answer(hashes[-1]), "hashes"
    if (boxed := _last_boxed(text)) is not None:
        return normalize_answer(boxed), "boxed"
    if said := _ANSWER_IS.findall(text):
        return normalize_answer(_stated(said[-1])), "answer_is"
    if m := _TRAILING_NUMBER.search(text.replace("$", "")):
        return normalize_answer(m.group(1)), "trailing_number"
    return None, None


def extract_answer(text: str) -> str | None:
    """The final answer stated in a solution, normalised; None when it states none."""
    return find_answer(text)[0]


def reference_final_answer(reference: str) -> str | None:
    """A reference is a worked solution ending `#### x` or a bare answer; either gives x."""
    if "####" in reference or "\\boxed{" in reference:
        return extract_answer(reference)
    return normalize_answer(reference)


def _timeout(seconds: int) -> int | None:
    # math-verify times out with SIGALRM, which only the main thread may use.
    return seconds if threading.current_thread() is threading.main_thread() else None


def answers_match(reference: str, candidate: str, *, timeout_seconds: int = 5) -> bool | None:
    """math-verify equivalence (18 == 18.0 == 36/2); None when either side does not parse."""
    t = _timeout(timeout_seconds)
    gold = mv_parse(reference, parsing_timeout=t)
    pred = mv_parse(candidate, parsing_timeout=t)
    if not gold or not pred:
        return None
    return bool(mv_verify(gold, pred, timeout_seconds=t))


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
