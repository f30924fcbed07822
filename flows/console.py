"""Prefect's console while `prefmill run` reports its own errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from prefmill.errors import PrefmillError


def _error_names() -> set[str]:
    names, todo = set(), [PrefmillError, OSError]
    while todo:
        cls = todo.pop()
        if cls.__name__ != "Error":  # shutil.Error: too common a word to filter on
            names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def _reported_by_us(record, failure: re.Pattern[str]) -> bool:
    """A record about an error the command reports itself, in one line: Prefect's "Encountered
    exception" (it carries the exception) and "Finished in state Failed(... InputError: ...)" lines."""
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, (PrefmillError, OSError)):
        return True
    return record.levelname in ("INFO", "ERROR") and failure.search(record.getMessage()) is not None


@contextmanager
def no_console_tracebacks() -> Iterator[None]:
    """On the console, Prefect's lines about a failure this command reports in one line (a
    `PrefmillError`, an `OSError`) are left out: the error is printed once, by prefmill, without
    Prefect's traceback or its restatement of it. The UI and the API logs keep them all."""
    from prefect.logging.handlers import PrefectConsoleHandler

    failure = re.compile(r"Finished in state Failed\(.*\b(?:%s)\b" % "|".join(sorted(_error_names())))
    original = PrefectConsoleHandler.filter

    def filter(self, record):
        return False if _reported_by_us(record, failure) else original(self, record)

    PrefectConsoleHandler.filter = filter
    try:
        yield
    finally:
        PrefectConsoleHandler.filter = original
