"""Decontamination: drop prompts that share word n-grams with evaluation sets (GPT-3 used 13-grams).

Text is lower-cased and stripped of punctuation before n-grams are taken; a question shorter than
n words counts as one n-gram of all its words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import polars as pl

from prefmill.config import DecontaminationConfig

CONTAMINATED = "contaminated"

_WORD = re.compile(r"[a-z0-9]+")


def ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def eval_index(questions: Iterable[str], *, n: int) -> set[tuple[str, ...]]:
    index: set[tuple[str, ...]] = set()
    for q in questions:
        index |= ngrams(q, n)
    return index


def decontaminate(prompts: pl.DataFrame, index: set[tuple[str, ...]], *, cfg: DecontaminationConfig) -> pl.DataFrame:
    """Add `overlap` (share of the prompt's n-grams found in the eval sets), `keep`, `drop_reason`."""
    overlaps = []
    for question in prompts["question"]:
        grams = ngrams(question, cfg.ngram)
        overlaps.append(len(grams & index) / len(grams) if grams else 0.0)
    overlap = pl.Series("overlap", overlaps, dtype=pl.Float64)
    contaminated = (overlap > cfg.min_overlap) if cfg.min_overlap > 0 else (overlap > 0)
    return prompts.with_columns(
        overlap,
        keep=~contaminated,
        drop_reason=pl.when(contaminated).then(pl.lit(CONTAMINATED)).otherwise(pl.lit(None, pl.String)),
    )


def decontaminate_prompts(
    prompts: pl.DataFrame, eval_questions: pl.DataFrame, *, cfg: DecontaminationConfig
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the prompts to keep, every prompt with `overlap`/`keep`/`drop_reason`) against the eval questions."""
    checked = decontaminate(prompts, eval_index(eval_questions["question"].drop_nulls(), n=cfg.ngram), cfg=cfg)
    return checked.filter(pl.col("keep")), checked
