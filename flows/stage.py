"""The one place a stage becomes a Prefect task: read the input refs, call the pure stage, check each
output against its schema, write it where its cache key says, return refs.

Every task is `stage_task(fn, name=..., outputs=...)`: Prefect sees the stage's own parameters (plus
`work`, the dataset's cache folder), the cache key comes from the code (flows.cache_keys), results
persist in `<store>/.cache/prefect-results`, and a cached result whose files were deleted, truncated or
changed is recomputed, not trusted. A stage parameter named `checkpoints` gets a folder of its own
(prefmill.checkpoints) beside the outputs, named by the same key, for stages that resume mid-way.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
from prefect import Task, task
from prefect.cache_policies import CachePolicy
from prefect.filesystems import LocalFileSystem
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from prefmill import progress
from prefmill.checkpoints import Checkpoints
from prefmill.flows.cache_keys import stage_key
from prefmill.refs import TableRef, write_table

CHECKPOINTS = "checkpoints"


@functools.lru_cache(maxsize=None)
def _result_storage(basepath: str, flow_run: str | None) -> LocalFileSystem:
    """One saved block per store and flow run (a run may talk to a server of its own)."""
    block = LocalFileSystem(basepath=basepath)
    block.save(f"prefmill-results-{hashlib.sha256(basepath.encode()).hexdigest()[:12]}", overwrite=True)
    return block


def result_storage(work: str) -> LocalFileSystem:
    """Persisted results of a store (`<store>/.cache/prefect-results`; `work` is `<store>/.cache/<dataset>`)."""
    return _result_storage(str((Path(work).parent / "prefect-results").resolve()), flow_run.get_id())


def _read(value: Any) -> Any:
    if isinstance(value, TableRef):
        return value.read()
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, TableRef) for v in value):
        return [v.read() for v in value]
    return value


def _refs(result: Any) -> tuple[TableRef, ...]:
    return result if isinstance(result, tuple) else (result,)


class StageTask:
    """A pure stage as a cached Prefect task; call it like the stage, with refs for tables and `work=`."""

    def __init__(
        self, fn: Callable[..., Any], *, name: str, outputs: Sequence[pa.Schema],
        note: Callable[..., str] | None = None, failed: Callable[..., bool] | None = None,
    ) -> None:
        self.fn, self.name, self.schemas, self.note, self.failed = fn, name, tuple(outputs), note, failed
        self.signature = inspect.signature(fn)
        self.keyed = [p for p in self.signature.parameters if p != CHECKPOINTS]
        self.task: Task = task(
            self._prefect_fn(), name=name, persist_result=True,
            cache_policy=CachePolicy.from_cache_key_fn(lambda _ctx, params: self.key(params)),
        )

    def key(self, parameters: dict[str, Any]) -> str:
        bound = self.signature.bind_partial(**{k: v for k, v in parameters.items() if k in self.keyed})
        bound.apply_defaults()
        return stage_key(self.name, self.fn.__module__, {k: v for k, v in bound.arguments.items() if k in self.keyed})

    def _prefect_fn(self) -> Callable[..., Any]:
        def run(*args: Any, work: str, **kwargs: Any) -> TableRef | tuple[TableRef, ...]:
            start = time.perf_counter()
            bound = self.signature.bind_partial(*args, **kwargs)
            key = self.key(bound.arguments)
            folder = Path(work) / self.name
            inputs = {k: _read(v) for k, v in bound.arguments.items()}
            if CHECKPOINTS in self.signature.parameters:
                inputs[CHECKPOINTS] = Checkpoints(folder / f"{key}-{CHECKPOINTS}")
            result = self.fn(**inputs)
            frames = result if isinstance(result, tuple) else (result,)
            if len(frames) != len(self.schemas):
                raise TypeError(f"stage {self.name}: returned {len(frames)} tables, declared {len(self.schemas)}")
            refs = tuple(
                write_table(frame, folder / f"{key}-{i}.parquet", schema=schema, where=f"{self.name} output", fill_nullable=True)
                for i, (frame, schema) in enumerate(zip(frames, self.schemas))
            )
            seconds = time.perf_counter() - start
            note = f"{self.note(*frames)} " if self.note is not None else ""
            get_run_logger().info("%s: %s(%.1f s)", self.name, note, seconds)
            progress.report_stage(self.name, seconds)
            return refs if len(refs) > 1 else refs[0]

        params = [p for p in self.signature.parameters.values() if p.name != CHECKPOINTS]
        run.__signature__ = self.signature.replace(  # type: ignore[attr-defined]
            parameters=[*params, inspect.Parameter("work", inspect.Parameter.KEYWORD_ONLY, annotation=str)]
        )
        run.__name__ = run.__qualname__ = f"stage_{self.name.replace('-', '_')}"
        run.__doc__ = self.fn.__doc__
        return run

    def __call__(self, *args: Any, work: str, **kwargs: Any) -> Any:
        persisted = self.task.with_options(result_storage=result_storage(work))
        state = persisted(*args, work=work, return_state=True, **kwargs)
        result = state.result()
        if state.name != "Cached" or self._reusable(_refs(result)):
            return result
        return persisted.with_options(refresh_cache=True)(*args, work=work, **kwargs)

    def _reusable(self, refs: tuple[TableRef, ...]) -> bool:
        """A cached result is reused only when its files are intact and it holds no engine failure (a
        rerun after the server is back retries those; the rollout cache serves everything else)."""
        if not all(ref.intact() for ref in refs):
            return False
        return self.failed is None or not self.failed(*(ref.read() for ref in refs))


def stage_task(
    fn: Callable[..., Any], *, name: str, outputs: pa.Schema | Sequence[pa.Schema],
    note: Callable[..., str] | None = None, failed: Callable[..., bool] | None = None,
) -> StageTask:
    """`fn` (tables in, keyword-only configs and engine, table or tuple of tables out) as a task whose
    outputs are conformed to `outputs`, one schema per returned table; `note(*tables)` is logged;
    `failed(*tables)` says a result holds engine failures, so a rerun recomputes it instead of reusing it."""
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return StageTask(fn, name=name, outputs=outputs, note=note, failed=failed)


def rows(frame: pl.DataFrame) -> str:
    """The plainest note: how many rows a stage wrote."""
    return f"{frame.height} rows"
