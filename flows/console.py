"""Prefect's console while `prefmill run` reports its own errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefmill.errors import PrefmillError


@contextmanager
def no_console_tracebacks() -> Iterator[None]:
    """Prefect logs a failed task's traceback to the console; for an error this command reports in one
    line (a `PrefmillError`, an `OSError`) the console shows Prefect's line without it (the UI keeps it)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    original = PrefectConsoleHandler.format

    def format(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, (PrefmillError, OSError)):
            return original(self, record)
        saved, (record.exc_info, record.exc_text) = (record.exc_info, record.exc_text), (None, None)
        try:
            return original(self, record)
        finally:
            record.exc_info, record.exc_text = saved

    PrefectConsoleHandler.format = format
    try:
        yield
    finally:
        PrefectConsoleHandler.format = original
