"""Engine replicas on a Ray cluster behind the `Engine` protocol, so every generating stage (sampling,
judges, RISE edits, MC and OmegaPRM rollouts) scales out through the same path, unchanged.

Each replica is a long-lived Ray actor holding one prefmill engine (vLLM, scripted, OpenAI client),
built by `engine_for` on its node. A call's requests are cut into batches of `batch_size`, streamed to
the replicas with at most `max_concurrent_batches` in flight on each (least-loaded first, `ray.wait`
back-pressure) and joined back by request id, in request order. An actor that dies is restarted once
by Ray and its batch retried; a batch that still fails comes back as per-request errors, which the
stage counts against its `max_failed_share` like any engine failure.

Where this differs from Ray Data's LLM processor (`ray.data.llm.build_llm_processor`): that builds a new
actor pool, and so loads the model again, for every Dataset it processes, and a prefmill run makes
~10 engine calls (chunks, judges, rollouts). prefmill keeps one pool for the run and does what Ray
Data's actor-pool operator does inside (bounded batches in flight per actor). Seeds travel with each
request, so which replica serves a request changes no sample: the dataset is the same as local.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from prefmill.engine_config import EngineConfig
from prefmill.engines.base import GenRequest, GenResult
from prefmill.errors import ConfigError, EngineError, cut
from prefmill.runner_config import RunnerConfig

log = logging.getLogger("prefmill")


class _ReplicaDied(Exception):
    """A replica's actor is gone for good (died again after Ray restarted it once)."""


class _Replica:
    """One engine on one Ray worker; built where it runs, so a vLLM model loads on its own GPU."""

    def __init__(self, engine_json: str, references: Mapping[str, str]) -> None:
        from prefmill.engines import engine_for

        self.engine = engine_for(EngineConfig.model_validate_json(engine_json), references=references)
        self.calls, self.requests = 0, Counter()

    def fingerprint(self) -> str:
        return self.engine.fingerprint

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        self.calls += 1
        self.requests.update(r.purpose for r in requests)
        return self.engine.generate(requests)

    def stats(self) -> dict[str, Any]:
        """What this replica served: its process and node, calls, requests by purpose."""
        import ray

        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(), "calls": self.calls,
                "requests": dict(self.requests)}


_START_HINT = "start it with `ray start --head`, or set runner.address: null to run Ray here"


def check_address(runner: RunnerConfig) -> tuple[str | None, str]:
    """The cluster address a run will join and where it came from; one clear error, at once, when
    nothing listens there (ray.init would retry for minutes)."""
    address = runner.address or os.environ.get("RAY_ADDRESS") or None
    where = "runner.address" if runner.address else "$RAY_ADDRESS"  # the value may hold a secret: not shown
    if address not in (None, "auto") and not _reachable(address):
        raise ConfigError(f"{where}: no Ray cluster answers there (nothing listens on that host:port)",
                          hint=_START_HINT)
    return address, where


def connect(runner: RunnerConfig) -> None:
    """Join the recipe's cluster (or $RAY_ADDRESS), else start Ray on this machine; once a process."""
    import ray

    if ray.is_initialized():
        return
    address, where = check_address(runner)
    kwargs: dict[str, Any] = {"log_to_driver": False, "configure_logging": False}
    if address is None:
        kwargs |= {"include_dashboard": False}
        if runner.object_store_memory_mb:
            kwargs["object_store_memory"] = runner.object_store_memory_mb * 1024 * 1024
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"{where}: cannot join the Ray cluster: {type(exc).__name__}",
                          hint=_START_HINT) from None


def _reachable(address: str, *, timeout: float = 5.0) -> bool:
    """Whether something listens on the address's host:port (GCS for `host:port`, the Ray Client
    server for `ray://host:port`)."""
    host, _, port = address.split("://", 1)[-1].rstrip("/").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


class RayEnginePool:
    """`runner.replicas` engines of `engine` on Ray; same fingerprint as one local engine of it."""

    def __init__(self, engine: EngineConfig, runner: RunnerConfig, *, references: Mapping[str, str] | None = None) -> None:
        import ray

        connect(runner)
        self.runner = runner
        self.calls = 0
        self.dead: set[int] = set()  # replicas gone for good: never sent a batch again
        actor = ray.remote(_Replica).options(
            num_cpus=runner.num_cpus, num_gpus=runner.num_gpus, max_restarts=1, max_task_retries=1,
        )
        refs = ray.put(dict(references or {}))
        self.replicas = [actor.remote(engine.model_dump_json(), refs) for _ in range(runner.replicas)]
        try:
            asked = [r.fingerprint.remote() for r in self.replicas]
            waited = min(30.0, runner.start_timeout)
            started, _ = ray.wait(asked, num_returns=len(asked), timeout=waited)
            if len(started) < len(asked):  # Ray waits silently for resources the cluster may not have
                log.warning("ray runner: %d of %d replicas not started after %.0f s; each needs %g CPU and %g GPU "
                            "free (cluster: %s); waiting up to runner.start_timeout=%.0f s", len(asked) - len(started),
                            len(asked), waited, runner.num_cpus, runner.num_gpus, ray.available_resources(),
                            runner.start_timeout)
            prints = set(ray.get(asked, timeout=runner.start_timeout))
        except (ray.exceptions.RayError, TimeoutError) as exc:  # GetTimeoutError is both
            self.close()
            raise EngineError(f"runner: the engine replicas did not start within {runner.start_timeout:.0f} s: "
                              f"{cut(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 300)}",
                              hint="check the cluster has the CPUs/GPUs of runner.num_cpus/num_gpus per replica "
                                   "and prefmill installed on every node") from None
        if len(prints) != 1:
            self.close()
            raise EngineError(f"runner: the replicas run different engines ({', '.join(sorted(prints))})",
                              hint="install the same model and versions on every node")
        self.fingerprint = prints.pop()
        log.info("ray runner: %d replica(s) of %s", len(self.replicas), self.fingerprint)

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        import ray

        if not requests:
            return []
        if not self.replicas:
            raise EngineError("ray runner: this pool was closed")
        self.calls += 1
        load = {i: 0 for i in range(len(self.replicas)) if i not in self.dead}  # live replicas only
        # Every live replica gets work even when a call is small (a 64-prompt chunk, 8 replicas):
        # batches of at most batch_size, at least one per replica.
        size = max(1, min(self.runner.batch_size, -(-len(requests) // max(1, len(load)))))
        batches = [list(requests[i:i + size]) for i in range(0, len(requests), size)]
        pending = list(range(len(batches)))[::-1]  # popped from the end: first batch first
        in_flight: dict[Any, tuple[int, int, float]] = {}  # object ref -> (batch, replica, sent at)
        done: dict[str, GenResult] = {}
        while pending or in_flight:
            while pending and load and min(load.values()) < self.runner.max_concurrent_batches:
                replica = min(load, key=load.__getitem__)
                batch = pending.pop()
                in_flight[self.replicas[replica].generate.remote(batches[batch])] = (batch, replica, time.monotonic())
                load[replica] += 1
            if not in_flight:  # every replica is dead: what is left fails, the stage decides
                for batch in pending:
                    done |= {r.request_id: GenResult(r.request_id, error="ray runner: no live replica") for r in batches[batch]}
                break
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=min(60.0, self.runner.batch_timeout))
            if not ready:  # a replica stuck past batch_timeout (node lost, restart unplaceable) is dropped
                for ref, (batch, replica, sent) in list(in_flight.items()):
                    if time.monotonic() - sent > self.runner.batch_timeout and replica in load:
                        self._drop(replica, load, f"no result in {self.runner.batch_timeout:.0f} s")
                        ray.kill(self.replicas[replica], no_restart=True)
                for ref, (batch, replica, _) in list(in_flight.items()):
                    if replica not in load:
                        del in_flight[ref]
                        pending.append(batch)
                continue
            batch, replica, _ = in_flight.pop(ready[0])
            try:
                results = self._results(ready[0], batches[batch])
            except _ReplicaDied as exc:  # dead after its restart: its batch goes to the others
                self._drop(replica, load, str(exc))
                pending.append(batch)
                continue
            if replica in load:
                load[replica] -= 1
            done |= {result.request_id: result for result in results}
        return [done[r.request_id] for r in requests]

    def _drop(self, replica: int, load: dict[int, int], why: str) -> None:
        if load.pop(replica, None) is not None:
            self.dead.add(replica)
            log.warning("ray runner: replica %d is gone (%s); its batches go to the other %d", replica, why, len(load))

    @staticmethod
    def _results(ref: Any, batch: list[GenRequest]) -> list[GenResult]:
        import ray

        try:
            results = ray.get(ref)
        except (ray.exceptions.ActorDiedError, ray.exceptions.ActorUnavailableError) as exc:
            raise _ReplicaDied(type(exc).__name__) from None
        except ray.exceptions.RayTaskError as exc:  # the engine raised on the replica: its cause, not Ray's header
            cause = exc.cause if exc.cause is not None else exc
            reason = f"ray replica: {type(cause).__name__}: {cut(str(cause), 300)}"
            log.warning("%s", reason)
            return [GenResult(request_id=r.request_id, error=reason) for r in batch]
        if [r.request_id for r in results] != [r.request_id for r in batch]:
            raise EngineError("ray runner: a replica returned results for other requests than it was sent")
        return results

    def replica_stats(self) -> list[dict[str, Any]]:
        """Per replica: pid, node, calls and requests by purpose (what the tests check replicas served)."""
        import ray

        return ray.get([r.stats.remote() for r in self.replicas])

    def close(self) -> None:
        """Stop the replicas (the driver's exit stops them too)."""
        import ray

        for replica in self.replicas:
            ray.kill(replica)
        self.replicas = []
