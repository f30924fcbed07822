"""`prm`: a version's `steps` as stepwise supervision for a token-classification PRM.

TRL removed its PRMTrainer and the stepwise-supervision type in 2026; the layout stays what people know
(schemas/exports.py `PRM`): `prompt` (the question), `completions` (the steps), `labels` (list[bool],
True: the step can still reach the answer), then `chain_id`, `prompt_id`. Hard labels only: a
token-classification head trains with cross-entropy on class ids; for the Monte-Carlo soft values use
`openrlhf-prm --labels soft`.

`tokenize_prm` turns a row into `input_ids` / `attention_mask` / `labels` for
`AutoModelForTokenClassification` (num_labels=2; class 1 = True): the question, then every step, each
followed by `separator`; the label of step i sits on the last token of step i, -100 everywhere else.
`tokenize_prm_dataset` maps a whole `datasets.Dataset`; use it rather than a bare `dataset.map`, which
keeps the input's `labels` feature (list of bool) for the new `labels` and turns every -100 into True:

    from datasets import load_dataset
    from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification, Trainer
    data = tokenize_prm_dataset(load_dataset("parquet", data_files="steps-prm.parquet", split="train"), tok)
    model = AutoModelForTokenClassification.from_pretrained(path, num_labels=2)
    Trainer(model=model, args=args, train_dataset=data, data_collator=DataCollatorForTokenClassification(tok)).train()
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from prefmill.errors import InputError, cut
from prefmill.exports.step_labels import labelled_rows
from prefmill.schemas.exports import PRM
from prefmill.schemas.validate import conform

IGNORE_INDEX = -100  # what transformers' token-classification loss leaves out
SEPARATOR = "\n"


def to_prm(steps: pa.Table, *, skipped: dict[str, int]) -> pa.Table:
    """The `steps` table (schemas/tables.py `STEPS`) as the `PRM` export; rows without a hard label on
    every step are counted in `skipped` by reason, the rest keep their order."""
    rows = [{"prompt": row["prompt"], "completions": row["completions"], "labels": labels,
             "chain_id": row["chain_id"], "prompt_id": row["prompt_id"]}
            for row, labels in labelled_rows(steps, "hard", skipped)]
    return conform(pa.Table.from_pylist(rows, schema=PRM), PRM, where="prm export")


def tokenize_prm(row: Mapping[str, Any], tokenizer: Any, *, separator: str = SEPARATOR) -> dict[str, list[int]]:
    """`input_ids`, `attention_mask` and `labels` of one `PRM` row for a token-classification model.

    The question is tokenized with the tokenizer's special tokens (a BOS where it adds one) and
    followed by `separator`; each step is tokenized alone, without special tokens, and followed by
    `separator` (except the last). `labels` is 1 (True) or 0 at the last token of each step and
    `IGNORE_INDEX` elsewhere, so a row has exactly as many labels as steps. No truncation: filter long
    rows before training, since a cut row would lose the labels of its last steps."""
    steps, labels = list(row["completions"]), list(row["labels"])
    where = f"row {cut(row.get('chain_id', '?'))}"
    if not steps:
        raise InputError(f"{where}: no steps to label")
    if len(steps) != len(labels):
        raise InputError(f"{where}: {len(steps)} steps but {len(labels)} labels", hint="export the row again")
    sep = tokenizer(separator, add_special_tokens=False)["input_ids"]
    input_ids = list(tokenizer(row["prompt"])["input_ids"]) + sep
    targets = [IGNORE_INDEX] * len(input_ids)
    for i, (step, label) in enumerate(zip(steps, labels)):
        ids = list(tokenizer(step, add_special_tokens=False)["input_ids"])
        if not ids:
            raise InputError(f"{where}: step {i} has no tokens: {cut(repr(step))}")
        if label is None:
            raise InputError(f"{where}: step {i} has no label")
        tail = sep if i < len(steps) - 1 else []
        input_ids += ids + tail
        targets += [IGNORE_INDEX] * (len(ids) - 1) + [int(bool(label))] + [IGNORE_INDEX] * len(tail)
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": targets}


def tokenize_prm_dataset(dataset: Any, tokenizer: Any, *, separator: str = SEPARATOR) -> Any:
    """A `datasets.Dataset` of `PRM` rows as `tokenize_prm` rows (int64 ids and labels), nothing else kept."""
    from datasets import Features, List, Value

    features = Features({"input_ids": List(Value("int64")), "attention_mask": List(Value("int8")),
                         "labels": List(Value("int64"))})
    return dataset.map(tokenize_prm, fn_kwargs={"tokenizer": tokenizer, "separator": separator},
                       remove_columns=dataset.column_names, features=features)
