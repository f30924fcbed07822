"""Progress of long stages: Prefect logs always, plus a listener (the CLI's rich bar) when one is set."""

from __future__ import annotations

from collections.abc import Callable

Listener = Callable[[str, int, int], None]  # (stage, done, total)

_listeners: list[Listener] = []


def add_listener(listener: Listener) -> None:
    _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def report(stage: str, done: int, total: int) -> None:
    for listener in list(_listeners):
        listener(stage, done, total)


StageListener = Callable[[str, float], None]  # (stage, seconds its computation took)

_stage_listeners: list[StageListener] = []


def add_stage_listener(listener: StageListener) -> None:
    _stage_listeners.append(listener)


def remove_stage_listener(listener: StageListener) -> None:
    if listener in _stage_listeners:
        _stage_listeners.remove(listener)


def report_stage(stage: str, seconds: float) -> None:
    """A stage computed (not served from the cache) in `seconds`: read inputs, run, write outputs."""
    for listener in list(_stage_listeners):
        listener(stage, seconds)

