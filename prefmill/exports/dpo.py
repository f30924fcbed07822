"""`dpo`: a version's `pairs` as TRL DPOTrainer's conversational preference format (trl 1.16).

Output columns (schemas/exports.py `DPO`): `prompt` (the user turn, a message list), `chosen` and
`rejected` (one assistant turn each), then `pair_id`, `prompt_id`, `chosen_score`, `rejected_score`.

What TRL does with them (trl/trainer/dpo_trainer.py, `DPOTrainer._prepare_dataset`): a row with a
message-list `prompt` is conversational, so it renders `prompt` with the generation prompt, and
`prompt + chosen`, `prompt + rejected` with the chat template; the completion starts where the token
ids diverge. Only `prompt_ids`, `chosen_ids`, `rejected_ids` (and `ref_chosen_logps` /
`ref_rejected_logps`) are signature columns; with the default `remove_unused_columns=True` the ids and
scores are dropped before collation, and `DataCollatorForPreference` reads no other key even when
they are kept. No extra column takes a name TRL reads (`DPO_RESERVED`).

Rows keep the version's order (easy to hard under a curriculum; the Trainer shuffles them by default).

    from datasets import load_dataset
    from trl import DPOConfig, DPOTrainer
    data = load_dataset("parquet", data_files="pairs-dpo.parquet", split="train")
    DPOTrainer(model=model, args=DPOConfig(output_dir="out"), train_dataset=data, processing_class=tok).train()
"""

from __future__ import annotations

import pyarrow as pa

from prefmill.schemas.exports import DPO
from prefmill.schemas.validate import conform


def to_dpo(pairs: pa.Table) -> pa.Table:
    """The `pairs` table (schemas/tables.py `PAIRS`) as the `DPO` export, one row per pair, same order."""
    return conform(pairs.select([f.name for f in DPO]), DPO, where="dpo export")
