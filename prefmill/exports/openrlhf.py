"""`openrlhf-prm`: a version's `steps` in the format OpenRLHF's PRM trainer reads.

Read from OpenRLHF v0.9.5 (github.com/OpenRLHF/OpenRLHF, the last release with a PRM trainer: commit
6a981c8c removed it in March 2026, so openrlhf >= 0.9.6 has no `train_prm`):
`openrlhf/datasets/process_reward_dataset.py` (ProcessRewardDataset), `openrlhf/models/loss.py`
(PRMLoss), `openrlhf/cli/train_prm.py` and `examples/scripts/train_prm_mistral.sh`.

- A row has `--input_key` (default `input`): plain text, tokenized with `add_special_tokens=False` and
  no chat template, holding `--placeholder_token` once after every step; and `--label_key` (default
  `label`): one label per placeholder, in order. The loss is read only at placeholder positions.
- Hard labels are strings from `--reward_tokens` (here "+" / "-"): the causal LM learns to predict the
  reward token at each placeholder (cross-entropy over the reward tokens only).
- Soft labels are floats in [0, 1] (P("+")); PRMLoss then needs exactly two reward tokens, the
  positive first, and trains on the targets [p, 1 - p]. Caveat: ProcessRewardDataset in openrlhf
  0.5.6 - 0.9.5 builds the label tensor with the input ids' integer dtype, so float labels fail in
  `__getitem__` ("Index put requires the source and destination dtypes match"); 0.5.0 - 0.5.5.post2
  take them, or patch that line to `torch.full_like(input_ids, -100, dtype=label_tensor.dtype)`.
- The placeholder and each reward token must be ONE token of the model's tokenizer
  (`convert_token_to_id` asserts it), and the placeholder must come out as that same token inside the
  text: "ки" (Math-Shepherd's, and the example script's, which trains Mistral-7B) is two tokens for SmolLM2.
  `check_tokenizer` checks both for every row; `prefmill export --tokenizer PATH` runs it.

The text is Math-Shepherd's layout: the question, a newline, then the steps one a line, each followed
by " " and the placeholder. The command (openrlhf 0.9.5; `--placeholder_token` is the export's
placeholder; `--train_batch_size` must not exceed the number of rows, or an epoch has 0 steps; add
`--attn_implementation sdpa` where flash-attn is not installed, its default):

    deepspeed --module openrlhf.cli.train_prm --pretrain MODEL --dataset steps-openrlhf.jsonl \\
        --input_key input --label_key label --placeholder_token "ки" --reward_tokens "+" "-" \\
        --max_len 2048 --train_batch_size 128 --micro_train_batch_size 8 --learning_rate 1e-6 \\
        --save_path ./checkpoint/prm
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from prefmill.errors import InputError, cut
from prefmill.exports.step_labels import LabelKind, labelled_rows
from prefmill.schemas.exports import OPENRLHF_PRM_HARD, OPENRLHF_PRM_SOFT
from prefmill.schemas.validate import conform

PLACEHOLDER = "ки"  # OpenRLHF's example (`--placeholder_token ки`); train_prm itself has no default
POSITIVE, NEGATIVE = "+", "-"  # `--reward_tokens + -`: the positive token first (soft labels need it)
INPUT_KEY, LABEL_KEY = "input", "label"  # train_prm's defaults for --input_key / --label_key


def openrlhf_input(question: str, steps: list[str], *, placeholder: str = PLACEHOLDER) -> str:
    """The question, then each step on a line of its own followed by " " and the placeholder."""
    return question + "\n" + "\n".join(f"{step} {placeholder}" for step in steps)


def _check_placeholder(placeholder: str) -> None:
    if not placeholder or placeholder != placeholder.strip():
        raise InputError(f"placeholder {placeholder!r}: must be non-empty text without surrounding whitespace",
                         hint=f"the default is {PLACEHOLDER!r}; it must be one token of the model's tokenizer")


def to_openrlhf_prm(steps: pa.Table, *, labels: LabelKind, skipped: dict[str, int],
                    placeholder: str = PLACEHOLDER) -> pa.Table:
    """The `steps` table as `input` / `label` rows (schemas/exports.py `OPENRLHF_PRM_HARD` or `_SOFT`).
    Rows without a label (or value) on every step are counted in `skipped`; a question or step that
    already holds the placeholder would shift every label after it, so it stops the export."""
    _check_placeholder(placeholder)
    schema = OPENRLHF_PRM_HARD if labels == "hard" else OPENRLHF_PRM_SOFT
    rows = []
    for row, found in labelled_rows(steps, labels, skipped):
        texts = [row["prompt"], *row["completions"]]
        if any(placeholder in text for text in texts):
            raise InputError(f"chain {cut(row['chain_id'])}: its question or a step contains the placeholder "
                             f"{placeholder!r}", hint="choose another --placeholder, one the data never holds")
        label = [POSITIVE if ok else NEGATIVE for ok in found] if labels == "hard" else found
        rows.append({INPUT_KEY: openrlhf_input(row["prompt"], row["completions"], placeholder=placeholder),
                     LABEL_KEY: label, "chain_id": row["chain_id"], "prompt_id": row["prompt_id"]})
    return conform(pa.Table.from_pylist(rows, schema=schema), schema, where="openrlhf-prm export")


def token_id(token: str, tokenizer: Any) -> int:
    """OpenRLHF's `convert_token_to_id`: the one id `token` encodes to, or an `InputError`."""
    ids = tokenizer.encode(token, add_special_tokens=False)
    if len(ids) != 1:
        raise InputError(f"{token!r} is {len(ids)} tokens for this tokenizer; OpenRLHF needs exactly one",
                         hint="choose a placeholder / reward token that is a single token (an unused special "
                              "token of the model works)")
    return ids[0]


def check_tokenizer(table: pa.Table, tokenizer: Any, *, placeholder: str = PLACEHOLDER,
                    reward_tokens: tuple[str, ...] = (POSITIVE, NEGATIVE)) -> None:
    """Raise an `InputError` unless OpenRLHF would read every row of an `openrlhf-prm` table as meant:
    the placeholder and each reward token one token, and each row's text (tokenized as
    ProcessRewardDataset does: no special tokens) holding the placeholder's id once per label.
    Truncation at `--max_len` is not checked (OpenRLHF drops the labels of cut placeholders)."""
    placeholder_id = token_id(placeholder, tokenizer)
    for token in reward_tokens:
        token_id(token, tokenizer)
    for row in table.select(["chain_id", INPUT_KEY, LABEL_KEY]).to_pylist():
        ids = tokenizer(row[INPUT_KEY], add_special_tokens=False)["input_ids"]
        found, want = sum(i == placeholder_id for i in ids), len(row[LABEL_KEY])
        if found != want:
            raise InputError(f"chain {cut(row['chain_id'])}: the text tokenizes to {found} placeholder tokens for "
                             f"{want} labels", hint=f"the tokenizer may merge {placeholder!r} with the text around "
                             "it: choose another --placeholder, e.g. an unused special token of the model")
