"""The label list of each `steps` row an export writes: hard (`labels`, bool) or soft (`values`, the
Monte-Carlo share of rollouts reaching the answer), or why the row cannot be written with it.

A published row has a hard label on every step (tasks.process.version keeps only those); soft values
can be missing: OmegaPRM leaves unprobed steps null, `early_stop` publishes a null value with its n. A
row without a value on every step is skipped with its reason, counted, never padded or cut.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import pyarrow as pa

LabelKind = Literal["hard", "soft"]
LABEL_KINDS: tuple[str, ...] = ("hard", "soft")

# skip reasons
NO_STEPS = "no_steps"
NULL_LABEL = "null_label"  # a step without a hard label
NULL_VALUE = "null_value"  # a step without a soft value (unprobed, early-stopped or failed)
LENGTH_MISMATCH = "length_mismatch"  # labels/values and completions differ in length


def row_labels(row: dict[str, Any], kind: LabelKind) -> tuple[list[bool] | list[float] | None, str | None]:
    """(labels, None) for a `steps` row, or (None, skip reason)."""
    steps = row["completions"] or []
    found = row["labels"] if kind == "hard" else row["values"]
    if not steps:
        return None, NO_STEPS
    if found is None:
        return None, NULL_LABEL if kind == "hard" else NULL_VALUE
    if len(found) != len(steps):
        return None, LENGTH_MISMATCH
    if any(v is None for v in found):
        return None, NULL_LABEL if kind == "hard" else NULL_VALUE
    return (list(found) if kind == "hard" else [float(v) for v in found]), None


def labelled_rows(steps: pa.Table, kind: LabelKind, skipped: dict[str, int]) -> Iterator[tuple[dict[str, Any], list]]:
    """(row, its labels) of every row that has them, in order; the others are counted in `skipped` by reason."""
    if kind not in LABEL_KINDS:
        raise ValueError(f"labels must be one of {', '.join(LABEL_KINDS)}; got {kind!r}")
    for row in steps.to_pylist():
        labels, reason = row_labels(row, kind)
        if reason is not None:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        yield row, labels
