"""One flow at a time on the accelerator: every engine call of a run holds a slot of a Prefect global
concurrency limit (`prefmill-gpu` by default, one slot; created by `prefmill deploy`). Only the calls
that reach the engine hold it: samples served by the rollout cache never wait."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound
from prefect.logging import get_run_logger

from prefmill.engines.base import Engine, GenRequest, GenResult

GPU_LIMIT = "prefmill-gpu"


def gpu_limit_name() -> str:
    return os.environ.get("PREFMILL_GPU_LIMIT", GPU_LIMIT)


def limit_exists(name: str) -> bool:
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            return False
    return True


class GpuSlot:
    """`engine` whose `generate` runs inside the global concurrency slot when the server has that limit
    (asked once, when the run starts); same fingerprint, same results."""

    def __init__(self, engine: Engine, *, limit: str | None = None) -> None:
        self.engine, self.fingerprint = engine, engine.fingerprint
        name = limit or gpu_limit_name()
        self.limit = name if limit_exists(name) else None

    @property
    def calls(self) -> int:
        return getattr(self.engine, "calls", 0)

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        if not requests or self.limit is None:  # no limit (a plain `prefmill run`): the call just runs
            return self.engine.generate(requests)
        with concurrency(self.limit, occupy=1, strict=True):
            start = time.time()
            try:
                return self.engine.generate(requests)
            finally:  # when the slot was held, to the ms: a run's logs show who waited for whom
                get_run_logger().info("%s slot held from %.3f to %.3f by process %d (%d requests)", self.limit, start,
                                      time.time(), os.getpid(), len(requests))
