"""Progress of long stages: Prefect logs always, plus listeners (the CLI's rich bar, a benchmark's
stage timer) when some are set."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Listener = Callable[[str, int, int], None]  # (stage, done, total)
StageListener = Callable[[str, float], None]  # (stage, seconds its computation took)


class _Listeners:
    def __init__(self) -> None:
        self.items: list[Callable[..., None]] = []

    def add(self, listener: Callable[..., None]) -> None:
        self.items.append(listener)

    def remove(self, listener: Callable[..., None]) -> None:
        if listener in self.items:
            self.items.remove(listener)

    def emit(self, *args: Any) -> None:
        for listener in list(self.items):
            listener(*args)


_progress, _stages = _Listeners(), _Listeners()
add_listener, remove_listener = _progress.add, _progress.remove
add_stage_listener, remove_stage_listener = _stages.add, _stages.remove


def report(stage: str, done: int, total: int) -> None:
    _progress.emit(stage, done, total)


def report_stage(stage: str, seconds: float) -> None:
    """A stage computed (not served from the cache) in `seconds`: read inputs, run, write outputs."""
    _stages.emit(stage, seconds)
