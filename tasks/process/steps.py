"""Step splitting: a solution becomes a list of steps, each with its character span (PRM800K, Math-Shepherd).

Three rules, chosen per recipe:

- ``newline``: a step is a line. Blank lines separate steps but never make one.
- ``step_marker``: a step starts at "Step 1:", "step 2.", "**Step 3:**", "Step 4)" at the start of a line
  (case-insensitive) and runs to the next marker; text before the first marker is a step of its own.
- ``sentence``: the newline rule, then each line is cut after ".", "!" or "?" (plus closing quotes or
  brackets) followed by whitespace. A "." inside a number (3.5), after an enumeration ("1. ", "Step 2. ")
  or after a few abbreviations ("e.g. ", "Mr. ") ends nothing.

Shared by all rules:

- A span excludes the whitespace around its step, so ``text[start:end] == step`` and ``step == step.strip()``.
- GSM8K calculator annotations ``<<48/2=24>>`` (one line, no ``<``/``>`` inside) are never cut, whatever
  they contain (``<<0.5*4=2>>`` does not end a sentence).
- A piece that starts with ``####`` (GSM8K's final answer line) joins the step before it: a final answer
  alone is no reasoning step, and as a step of its own its MC label would only repeat the label of the
  complete solution. Only when nothing comes before it is it a step by itself.
- Between two consecutive steps, and before the first and after the last, there is only whitespace.

Offsets count Python characters (code points), like ``str`` slicing.
"""

from __future__ import annotations

import re
from typing import Literal

import polars as pl
import pyarrow as pa

from prefmill.schemas import tables
from prefmill.tasks.solution_text import ANNOTATION, STEP_MARKER


SplitRule = Literal["newline", "step_marker", "sentence"]
RULES: tuple[str, ...] = ("newline", "step_marker", "sentence")

SPAN = pl.from_arrow(pa.schema([("span", tables.SPAN)]).empty_table()).schema["span"]  # [start, end) characters

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SENTENCE_END = re.compile(r"[.!?]+[\"'\u201d\u2019)\]]*(?=\s)")
# What may stand before a "." that does not end a sentence: an enumeration at the start of a line
# ("1.", "Step 2.", "a.") or an abbreviation.
_ENUMERATION = re.compile(r"(?:[#*_>-]+[^\S\n]*)?(?:step[^\S\n]*)?(?:\d+|[a-z])[*_]*", re.IGNORECASE)
_ABBREVIATIONS = frozenset({"e.g", "i.e", "mr", "mrs", "ms", "dr", "vs", "approx", "no", "cf", "fig"})


def annotation_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every ``<<...>>`` calculator annotation in `text`."""
    return [m.span() for m in ANNOTATION.finditer(text)]


def _inside(position: int, annotations: list[tuple[int, int]]) -> bool:
    """Whether a cut at `position` (between characters position-1 and position) lies inside an annotation."""
    return any(start < position < end for start, end in annotations)


def _line_cuts(text: str) -> list[tuple[int, int]]:
    """(end of a piece, start of the next) at every line break."""
    return [(m.start(), m.end()) for m in _LINE_BREAK.finditer(text)]


def _sentence_cuts(text: str, annotations: list[tuple[int, int]]) -> list[tuple[int, int]]:
    cuts = []
    for m in _SENTENCE_END.finditer(text):
        if _inside(m.end(), annotations):
            continue
        if m.group().startswith("."):
            line_start = max(text.rfind("\n", 0, m.start()), text.rfind("\r", 0, m.start())) + 1
            before = text[line_start : m.start()].strip()
            last_word = before.split()[-1].lstrip("(\"'").lower() if before else ""
            if _ENUMERATION.fullmatch(before) or last_word in _ABBREVIATIONS:
                continue
        cuts.append((m.end(), m.end()))
    return cuts


def _strip(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def split_steps(text: str, *, rule: SplitRule = "newline") -> list[tuple[int, int]]:
    """Character spans (start, end) of the steps of `text`, in order; see the module docstring.

    >>> text = "Half of 48 is 48/2 = <<48/2=24>>24.\\n\\n48+24 = <<48+24=72>>72\\n#### 72"
    >>> [text[s:e] for s, e in split_steps(text)]
    ['Half of 48 is 48/2 = <<48/2=24>>24.', '48+24 = <<48+24=72>>72\\n#### 72']
    """
    if rule not in RULES:
        raise ValueError(f"split_steps: rule must be one of {', '.join(RULES)}; got {rule!r}")
    annotations = annotation_spans(text)
    if rule == "step_marker":
        starts = [m.start() for m in STEP_MARKER.finditer(text) if not _inside(m.start(), annotations)]
        cuts = [(s, s) for s in starts]
    else:
        cuts = [(a, b) for a, b in _line_cuts(text)]
        if rule == "sentence":
            cuts = sorted(set(cuts) | set(_sentence_cuts(text, annotations)))
    pieces: list[tuple[int, int]] = []
    begin = 0
    for end, next_begin in cuts:
        if end < begin:  # a sentence cut at a line break already taken
            continue
        pieces.append((begin, end))
        begin = next_begin
    pieces.append((begin, len(text)))
    spans: list[tuple[int, int]] = []
    for start, end in pieces:
        span = _strip(text, start, end)
        if span is None:
            continue
        if spans and text.startswith("####", span[0]):
            spans[-1] = (spans[-1][0], span[1])
        else:
            spans.append(span)
    return spans


def steps_of(text: str, *, rule: SplitRule = "newline") -> list[str]:
    """The steps themselves: ``text[start:end]`` for every span."""
    return [text[start:end] for start, end in split_steps(text, rule=rule)]


def steps_frame(
    solutions: pl.DataFrame, *, text_column: str, id_column: str, rule: SplitRule = "newline"
) -> pl.DataFrame:
    """One row per solution: `id_column`, `steps` (list[str]) and `step_spans` (list[struct{start, end}]).

    A null text gives null `steps` and `step_spans` (no text is not the same as a text without steps,
    which gives empty lists). Rows keep the input order.
    """
    for column in (text_column, id_column):
        if column not in solutions.columns:
            raise ValueError(
                f"steps_frame: column {column!r} not in the solutions table; columns are {solutions.columns}"
            )
    steps: list[list[str] | None] = []
    spans: list[list[dict[str, int]] | None] = []
    for text in solutions[text_column]:
        if text is None:
            steps.append(None)
            spans.append(None)
            continue
        found = split_steps(text, rule=rule)
        steps.append([text[s:e] for s, e in found])
        spans.append([{"start": s, "end": e} for s, e in found])
    return pl.DataFrame(
        [
            solutions[id_column],
            pl.Series("steps", steps, dtype=pl.List(pl.String)),
            pl.Series("step_spans", spans, dtype=pl.List(SPAN)),
        ]
    )
