"""Check a table against its schema at a stage boundary; errors name the table, row and column."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import polars as pl

from prefmill.errors import SchemaError


def _shape_mismatch(actual: pa.DataType, expected: pa.DataType) -> str | None:
    """Struct field names differing anywhere inside a type (a cast would fill them with nulls)."""
    if pa.types.is_struct(expected) and pa.types.is_struct(actual):
        have = sorted(actual.field(i).name for i in range(actual.num_fields))
        want = sorted(expected.field(i).name for i in range(expected.num_fields))
        if have != want:
            return f"struct fields {have}, expected {want}"
        return next(
            (m for i in range(expected.num_fields)
             if (m := _shape_mismatch(actual.field(expected.field(i).name).type, expected.field(i).type))),
            None,
        )
    if pa.types.is_list(expected) or pa.types.is_large_list(expected):
        if pa.types.is_list(actual) or pa.types.is_large_list(actual):
            return _shape_mismatch(actual.value_type, expected.value_type)
    return None


def conform(
    table: pa.Table | pl.DataFrame, schema: pa.Schema, *, where: str, fill_nullable: bool = False
) -> pa.Table:
    """Return `table` with exactly `schema`'s columns, order and types, or raise `SchemaError`.

    `where` names the table in errors (a file path or `stage output`). Extra columns are dropped.
    With `fill_nullable`, missing nullable columns (stages that were off) are added as nulls.
    """
    if isinstance(table, pl.DataFrame):
        table = table.to_arrow()
    if fill_nullable:
        for field in schema:
            if field.nullable and field.name not in table.column_names:
                table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise SchemaError(
            f"{where}: missing column(s) {', '.join(missing)}; has {', '.join(table.column_names) or 'none'}"
        )
    columns = []
    for field in schema:
        column = table.column(field.name)
        if mismatch := _shape_mismatch(column.type, field.type):
            raise SchemaError(f"{where}: column {field.name!r} has {mismatch}")
        try:
            column = column.cast(field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SchemaError(
                f"{where}: column {field.name!r} has type {column.type}, expected {field.type}: {exc}"
            ) from None
        if not field.nullable and column.null_count:
            row = pc.index(pc.is_null(column), True).as_py()
            raise SchemaError(f"{where}: row {row}, column {field.name!r}: null where a value is required")
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def polars_schema(
    schema: pa.Schema, *, exclude: tuple[str, ...] = (), columns: tuple[str, ...] | None = None
) -> dict[str, pl.DataType]:
    """The polars dtypes of a pyarrow schema, for building frames row by row: all its columns but
    `exclude`, or just `columns` in that order."""
    types = dict(pl.from_arrow(schema.empty_table()).schema.items())
    if columns is not None:
        return {name: types[name] for name in columns}
    return {name: dtype for name, dtype in types.items() if name not in exclude}
