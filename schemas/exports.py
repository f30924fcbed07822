"""The tables `prefmill export` writes: one file a trainer reads as it is (prefmill.exports).

Each schema is the trainer's own column set first, then prefmill's ids (and scores) that the trainer
ignores, so a row can be traced back to its version.
"""

from __future__ import annotations

import pyarrow as pa

from prefmill.schemas.tables import MESSAGES

# TRL `DPOTrainer` (trl 1.16), conversational preference format: `prompt` = the user turn(s), `chosen` /
# `rejected` = one assistant turn each. TRL tokenizes prompt, prompt + chosen and prompt + rejected with
# the chat template and keeps only `prompt_ids`, `chosen_ids`, `rejected_ids` (and `ref_*_logps` when
# present): the extra columns below are dropped as unused, never read.
DPO = pa.schema(
    [
        pa.field("prompt", MESSAGES, nullable=False),
        pa.field("chosen", MESSAGES, nullable=False),
        pa.field("rejected", MESSAGES, nullable=False),
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("chosen_score", pa.float64()),  # in [0, 1], as in the version's `pairs`
        pa.field("rejected_score", pa.float64()),
    ]
)

# Columns TRL's DPOTrainer reads or treats specially when present: no extra column may take one of
# these names (`tools`/`chat_template_kwargs` change the chat template, `image(s)` make it a vision
# dataset, `ref_*_logps` replace the reference model, `completion`/`messages` change the format check).
DPO_RESERVED = frozenset({
    "prompt", "chosen", "rejected", "tools", "chat_template_kwargs", "image", "images", "ref_chosen_logps",
    "ref_rejected_logps", "prompt_ids", "chosen_ids", "rejected_ids", "completion", "messages",
})

# Stepwise supervision for a token-classification PRM: `prompt` = the question, `completions` = the
# steps, `labels[i]` = step i can still reach the answer (the layout of TRL's former PRMTrainer, which
# TRL removed in 2026); `prefmill.exports.prm.tokenize_prm` turns a row into input_ids / labels.
PRM = pa.schema(
    [
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("completions", pa.list_(pa.string()), nullable=False),
        pa.field("labels", pa.list_(pa.bool_()), nullable=False),
        pa.field("chain_id", pa.string(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
    ]
)

# OpenRLHF `train_prm` (openrlhf <= 0.9.5; later releases removed it), its defaults `--input_key input
# --label_key label`: `input` = question and steps, the placeholder token after every step; `label` = one
# entry per placeholder: a reward token ("+" / "-") for hard labels, a float in [0, 1] for soft ones.
OPENRLHF_PRM_HARD = pa.schema(
    [
        pa.field("input", pa.string(), nullable=False),
        pa.field("label", pa.list_(pa.string()), nullable=False),
        pa.field("chain_id", pa.string(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
    ]
)
OPENRLHF_PRM_SOFT = pa.schema(
    [
        pa.field("input", pa.string(), nullable=False),
        pa.field("label", pa.list_(pa.float64()), nullable=False),  # Monte-Carlo share of rollouts reaching the answer
        pa.field("chain_id", pa.string(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
    ]
)
