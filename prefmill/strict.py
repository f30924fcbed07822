"""Strict scalars for recipes: pydantic's lax mode turns "6" and 4.0 into 6 and 4 for an int field and
"yes" into True for a bool field; in a recipe those are mistakes. pydantic's own strict mode would also
refuse a YAML list for a tuple field, so only scalar fields (int, float, bool, str and their optional
forms) are checked, by walking the input alongside the models: every section, whichever module defines
it, without touching the section classes."""

from __future__ import annotations

from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from prefmill.errors import cut


_EXPECTED = {int: "an integer", float: "a number", bool: "true or false", str: "text"}


def _accepts(kind: type, value: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"text {cut(repr(value))}"
    return cut(repr(value))


def strict_errors(model: type[BaseModel], data: Any, loc: tuple[str, ...] = ()) -> dict[tuple[str, ...], str]:
    """loc -> message for every scalar field of `model` (and nested sections) given a value of another type."""
    errors: dict[tuple[str, ...], str] = {}
    if not isinstance(data, dict):
        return errors
    for name, value in data.items():
        field = model.model_fields.get(name) if isinstance(name, str) else None
        if field is None or value is None:
            continue
        options = [a for a in (get_args(field.annotation) if get_origin(field.annotation) in (Union, UnionType)
                               else (field.annotation,)) if a is not type(None)]
        models = [a for a in options if isinstance(a, type) and issubclass(a, BaseModel)]
        scalars = [a for a in options if a in _EXPECTED]
        if models and isinstance(value, dict):
            errors.update(strict_errors(models[0], value, (*loc, name)))
        elif scalars and len(scalars) == len(options) and not any(_accepts(k, value) for k in scalars):
            expected = " or ".join(_EXPECTED[k] for k in scalars)
            errors[(*loc, name)] = f"expected {expected}, got {_describe(value)}"
    return errors
