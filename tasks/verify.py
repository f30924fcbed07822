"""Verify: find the final answer in free-form text and compare it with the reference by math-verify.

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

STAGE_VERSION = 1

# verify_error values: why a sample has no verdict of its own (it then counts as incorrect).
EMPTY_COMPLETION = "empty_completion"
NO_ANSWER_FOUND = "no_answer_found"
UNPARSABLE_ANSWER = "unparsable_answer"
NO_REFERENCE = "no_reference"
ENGINE_ERROR = "engine_error"

_HASHES = re.compile(r"####\s*([^\n]*)")
_ANSWER_IS = re.compile(
    r"(?:the\s+(?:final\s+)?answer\s+is|final\s+answer\s*[:=]|answer\s*[:=])\s*:?\s*([^\n]+)", re.IGNORECASE
)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_FRACTION = re.compile(r"-?\d+\s*/\s*\d+")


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


def extract_answer(text: str) -> str | None:
    """The final answer stated in a solution, normalised; None when it states none."""
    if hashes := _HASHES.findall(text):
        candidate = hashes[-1]
    elif (boxed := _last_boxed(text)) is not None:
        candidate = boxed
    elif said := _ANSWER_IS.findall(text):
        candidate = said[-1]
    else:
        numbers = _NUMBER.findall(text.replace("$", ""))
        candidate = numbers[-1] if numbers else ""
    return normalize_answer(candidate)


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


def judge(completion: str, reference_answer: str | None, *, timeout_seconds: int = 5) -> tuple[str | None, bool, str | None]:
    """(extracted answer, correct, verify_error) for one completion."""
    if not completion.strip():
        return None, False, EMPTY_COMPLETION
    extracted = extract_answer(completion)
    if extracted is None:
        return None, False, NO_ANSWER_FOUND
    if reference_answer is None:
        return extracted, False, NO_REFERENCE
    verdict = answers_match(reference_answer, extracted, timeout_seconds=timeout_seconds)
    if verdict is None:
        return extracted, False, UNPARSABLE_ANSWER
    return extracted, verdict, None


def verify(samples: pl.DataFrame, prompts: pl.DataFrame, *, cfg: VerifyConfig) -> pl.DataFrame:
    """Add `reference_answer`, `extracted`, `correct`, `verify_error` to every sample.

    Failed engine requests stay in the table as incorrect with `verify_error="engine_error"`.
    """
    frame = samples.join(prompts.select("prompt_id", "reference_answer"), on="prompt_id", how="left")
    verdicts = [
        (None, False, ENGINE_ERROR)
        if error is not None
        else judge(text, ref, timeout_seconds=cfg.timeout_seconds)
        for text, ref, error in zip(frame["completion"], frame["reference_answer"], frame["error"])
    ]
    return frame.with_columns(
        pl.Series("extracted", [v[0] for v in verdicts], dtype=pl.String),
        pl.Series("correct", [v[1] for v in verdicts], dtype=pl.Boolean),
        pl.Series("verify_error", [v[2] for v in verdicts], dtype=pl.String),
    )
