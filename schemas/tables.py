"""Every table prefmill writes, as pyarrow schemas. Message lists follow TRL's conversational format."""

from __future__ import annotations

import pyarrow as pa

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES = pa.list_(MESSAGE)

PROMPTS = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("question", pa.string(), nullable=False),
        pa.field("reference", pa.string()),  # the source's reference: a worked solution or a bare answer
        pa.field("reference_answer", pa.string()),  # its final answer (after `####` for GSM8K)
        pa.field("source_row", pa.int64(), nullable=False),  # 0-based row in the source, for error messages
    ]
)

SAMPLES = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("sample_index", pa.int32(), nullable=False),
        pa.field("prompt", MESSAGES, nullable=False),
        pa.field("completion", pa.string(), nullable=False),
        pa.field("num_tokens", pa.int32(), nullable=False),
        pa.field("mean_logprob", pa.float64()),
        pa.field("finish_reason", pa.string(), nullable=False),  # stop | length | error
        pa.field("seed", pa.int64()),
        pa.field("engine", pa.string(), nullable=False),  # engine fingerprint
        pa.field("error", pa.string()),  # set when the engine failed this request after retries
    ]
)

VERIFIED = pa.schema(
    list(SAMPLES)
    + [
        pa.field("reference_answer", pa.string()),
        pa.field("extracted", pa.string()),  # the final answer found in the completion
        pa.field("correct", pa.bool_(), nullable=False),
        pa.field("verify_error", pa.string()),  # why no verdict could be reached, else null
    ]
)

PAIRS = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("prompt", MESSAGES, nullable=False),
        pa.field("chosen", MESSAGES, nullable=False),
        pa.field("rejected", MESSAGES, nullable=False),
        pa.field("strategy", pa.string(), nullable=False),
        pa.field("chosen_source", pa.string(), nullable=False),  # sample | reference
        pa.field("chosen_sample_id", pa.string()),
        pa.field("rejected_sample_id", pa.string(), nullable=False),
        pa.field("chosen_answer", pa.string()),
        pa.field("rejected_answer", pa.string()),
        pa.field("reference_answer", pa.string()),
        pa.field("chosen_logprob", pa.float64()),
        pa.field("rejected_logprob", pa.float64()),
        pa.field("engine", pa.string(), nullable=False),
    ]
)

# Configs of a dataset version: name -> schema of `data/<config>/<split>-*.parquet`.
VERSION_CONFIGS = {"samples": VERIFIED, "pairs": PAIRS}
