"""Every error prefmill raises on purpose: what went wrong, where, and how to fix it."""

from __future__ import annotations


class PrefmillError(Exception):
    """Base error; `hint` says how to fix it and is printed by the CLI under the message."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(PrefmillError):
    """A recipe file or `--set` override is invalid."""


class InputError(PrefmillError):
    """An input table (prompt file, completions file) has a bad row or field."""


class SchemaError(PrefmillError):
    """A table crossing a stage boundary does not match its schema."""


class StoreError(PrefmillError):
    """A dataset version cannot be found, read or published."""


class ModelError(PrefmillError):
    """The model cannot be found or prepared."""


class EngineError(PrefmillError):
    """The engine failed on more requests than a stage tolerates."""
