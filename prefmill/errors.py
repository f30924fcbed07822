"""Every error prefmill raises on purpose: what went wrong, where, and how to fix it."""

from __future__ import annotations

import re

MAX_MESSAGE = 4000
"""Characters of a message (and of a hint) at most: a hostile input must not make a huge error."""

MAX_VALUE = 200
"""Characters of a quoted input value in a message at most (see `cut`)."""


def cut(text: object, limit: int = MAX_VALUE) -> str:
    """`text` as a string of at most `limit` characters, saying how much was left out."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


_USERINFO = re.compile(r"(?<=://)[^/\s@'\"]+@")
_SECRET_PARAM = re.compile(r"(?i)(?<=[?&])(key|api_key|apikey|token|access_token|password|secret)=[^&\s'\"]+")


def redact(text: str) -> str:
    """`https://user:pw@host/?token=x` as `https://***@host/?token=***`: a message may quote a URL."""
    return _SECRET_PARAM.sub(r"\1=***", _USERINFO.sub("***@", text))


class PrefmillError(Exception):
    """Base error; `hint` says how to fix it and is printed by the CLI under the message. Both are cut
    to `MAX_MESSAGE` characters, and credentials in URLs are masked (`redact`)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        message = redact(cut(message, MAX_MESSAGE))
        hint = redact(cut(hint, MAX_MESSAGE)) if hint is not None else None
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(PrefmillError):
    """A recipe file or `--set` override is invalid."""


class InputError(PrefmillError):
    """An input table (prompt file, completions file) has a bad row or field."""


class OutputError(PrefmillError):
    """An output file (`prefmill verify --out`) cannot be written."""


class SchemaError(PrefmillError):
    """A table crossing a stage boundary does not match its schema."""


class StoreError(PrefmillError):
    """A dataset version cannot be found, read or published."""


class ModelError(PrefmillError):
    """The model cannot be found or prepared."""


class EngineError(PrefmillError):
    """The engine failed on more requests than a stage tolerates."""


def os_reason(exc: OSError) -> str:
    """`No space left on device`: the reason of an OS error, without Python's `[Errno 28]` decoration."""
    return exc.strerror or cut(exc) or type(exc).__name__
