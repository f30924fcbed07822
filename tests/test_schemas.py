"""schemas/tables.py and schemas/validate.conform: exact columns, order and types, or a SchemaError."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefmill.errors import SchemaError
from prefmill.schemas.tables import (
    MESSAGES, PAIRS, PROMPTS, RISE_STEPS, SAMPLES, SCORED, STEP_PAIRS, STEPS, VERIFIED, VERSION_CONFIGS, VOTES,
)
from prefmill.schemas.validate import conform

SMALL = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("n", pa.int32(), nullable=False),
        pa.field("score", pa.float64()),
        pa.field("messages", MESSAGES),
    ]
)

_text = st.text(max_size=8)
_message = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": _text})
_row = st.fixed_dictionaries(
    {
        "id": _text,
        "n": st.integers(min_value=-(2**31), max_value=2**31 - 1),
        "score": st.none() | st.floats(allow_nan=False),
        "messages": st.none() | st.lists(_message, max_size=3),
    }
)


def _table(rows: list[dict], *, chunks: int = 1) -> pa.Table:
    table = pa.Table.from_pylist(rows, schema=SMALL)
    if chunks > 1 and rows:
        size = -(-len(rows) // chunks)
        table = pa.concat_tables([table.slice(i, size) for i in range(0, len(rows), size)])
    return table


class TestTables:
    def test_verified_extends_samples(self):
        assert VERIFIED.names == SAMPLES.names + ["reference_answer", "extracted", "correct", "verify_error"]

    def test_version_configs(self):
        assert VERSION_CONFIGS == {
            "samples": SCORED, "pairs": PAIRS, "votes": VOTES, "steps": STEPS, "step_pairs": STEP_PAIRS,
            "rise_steps": RISE_STEPS,
        }
        assert SCORED.names[: len(VERIFIED)] == VERIFIED.names

    def test_required_columns(self):
        assert [f.name for f in PROMPTS if not f.nullable] == ["prompt_id", "question", "source_row"]
        assert [f.name for f in PAIRS if not f.nullable] == [
            "pair_id", "prompt_id", "prompt", "chosen", "rejected", "strategy", "chosen_source", "rejected_sample_id",
            "chosen_engine", "rejected_engine", "curriculum_rank", "weight",
        ]


class TestConform:
    @settings(max_examples=60, deadline=None)
    @given(rows=st.lists(_row, max_size=12), chunks=st.integers(min_value=1, max_value=3))
    def test_round_trips_valid_tables(self, rows, chunks):
        table = _table(rows, chunks=chunks)

        out = conform(table, SMALL, where="t")

        assert out.schema == SMALL
        assert out.to_pylist() == rows
        assert conform(out, SMALL, where="t").equals(out)

    @settings(max_examples=60, deadline=None)
    @given(
        rows=st.lists(_row, min_size=1, max_size=12),
        data=st.data(),
        column=st.sampled_from(["id", "n"]),
        chunks=st.integers(min_value=1, max_value=3),
    )
    def test_null_in_required_column_names_first_row_0_based_and_column(self, rows, data, column, chunks):
        bad = sorted(data.draw(st.sets(st.integers(min_value=0, max_value=len(rows) - 1), min_size=1)))
        arrays = {
            name: pa.array([None if name == column and i in bad else r[name] for i, r in enumerate(rows)],
                           type=SMALL.field(name).type)
            for name in SMALL.names
        }
        table = pa.table(arrays)
        if chunks > 1:
            size = -(-len(rows) // chunks)
            table = pa.concat_tables([table.slice(i, size) for i in range(0, len(rows), size)])

        with pytest.raises(SchemaError) as info:
            conform(table, SMALL, where="stage output")

        assert info.value.message == f"stage output: row {bad[0]}, column {column!r}: null where a value is required"

    def test_reorders_casts_and_drops_extra_columns(self):
        frame = pl.DataFrame({"extra": [1], "messages": [None], "score": [1], "n": [7], "id": ["a"]})

        out = conform(frame, SMALL, where="t")

        assert out.schema == SMALL
        assert out.to_pylist() == [{"id": "a", "n": 7, "score": 1.0, "messages": None}]

    def test_missing_columns(self):
        with pytest.raises(SchemaError) as info:
            conform(pa.table({"id": ["a"], "x": [1]}), SMALL, where="f.parquet")
        assert info.value.message == "f.parquet: missing column(s) n, score, messages; has id, x"

    def test_missing_columns_of_an_empty_table(self):
        with pytest.raises(SchemaError) as info:
            conform(pa.table({}), SMALL, where="t")
        assert info.value.message == "t: missing column(s) id, n, score, messages; has none"

    @pytest.mark.parametrize(
        ("column", "values", "got"),
        [
            ("n", ["x"], "string"),
            ("n", [1.5], "double"),
            ("n", [2**40], "int64"),
            ("messages", ["hello"], "string"),
        ],
    )
    def test_uncastable_column(self, column, values, got):
        arrays = {"id": ["a"], "n": [1], "score": [0.5], "messages": pa.array([None], MESSAGES)} | {column: values}
        with pytest.raises(SchemaError) as info:
            conform(pa.table(arrays), SMALL, where="t")
        assert info.value.message.startswith(f"t: column {column!r} has type {got}, expected {SMALL.field(column).type}: ")

    def test_all_null_column_of_null_type(self):
        table = pa.table({"id": pa.array([None], pa.null()), "n": [1], "score": [None], "messages": [None]})
        with pytest.raises(SchemaError) as info:
            conform(table, SMALL, where="t")
        assert info.value.message == "t: row 0, column 'id': null where a value is required"
    def test_messages_with_wrong_keys_are_refused(self):
        table = pa.table({"id": ["a"], "n": [1], "score": [None], "messages": [[{"speaker": "user", "text": "hi"}]]})
        with pytest.raises(SchemaError):
            conform(table, SMALL, where="t")
