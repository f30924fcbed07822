"""A persisted rollout cache in front of any engine, so MC labelling, OmegaPRM and self-consistency
reuse each other's samples across stages, runs and crashes.

A sample is keyed by (engine fingerprint, what is continued, sampling without `n`, sample index):
the same prefix sampled with the same seed gives the same text, so a request is served from the cache
when every one of its n samples is there. A partial hit regenerates the request whole (samples of
one seeded request are not independent of n in every engine) and stores all of it.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import polars as pl

from prefmill.atomic import write_atomically
from prefmill.engines.base import Completion, Engine, GenRequest, GenResult

_COLUMNS = {
    "key": pl.String,
    "text": pl.String,
    "num_tokens": pl.Int32,
    "mean_logprob": pl.Float64,
    "finish_reason": pl.String,
}


def sample_key(fingerprint: str, request: GenRequest, index: int) -> str:
    sampling = asdict(request.sampling)
    sampling.pop("n")
    what = {"messages": request.messages, "prefix": request.prefix, "continue_final": request.continue_final}
    blob = json.dumps([fingerprint, what, sampling, index], sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()


class RolloutCache:
    """Append-only Parquet shards in a folder; every shard is written whole, then renamed into place."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._entries: dict[str, Completion] = {}
        for shard in sorted(self.folder.glob("shard-*.parquet")):
            for row in pl.read_parquet(shard).iter_rows(named=True):
                self._entries[row["key"]] = Completion(
                    index=0, text=row["text"], num_tokens=row["num_tokens"],
                    mean_logprob=row["mean_logprob"], finish_reason=row["finish_reason"],
                )

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Completion | None:
        return self._entries.get(key)

    def put(self, items: dict[str, Completion]) -> None:
        if not items:
            return
        frame = pl.DataFrame(
            [{"key": k, "text": c.text, "num_tokens": c.num_tokens, "mean_logprob": c.mean_logprob,
              "finish_reason": c.finish_reason} for k, c in items.items()],
            schema=_COLUMNS,
        )
        write_atomically(self.folder / f"shard-{uuid.uuid4().hex}.parquet", frame.write_parquet)
        with self._lock:
            self._entries.update(items)


class CachingEngine:
    """Wraps an engine; same fingerprint, same results, fewer generations. Counts hits and misses."""

    def __init__(self, engine: Engine, cache: RolloutCache) -> None:
        self.engine = engine
        self.cache = cache
        self.fingerprint = engine.fingerprint
        self.hits = 0  # samples served from the cache
        self.misses = 0  # samples generated

    @property
    def calls(self) -> int:
        return getattr(self.engine, "calls", 0)

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        keys = {r.request_id: [sample_key(self.fingerprint, r, i) for i in range(r.sampling.n)] for r in requests}
        cached: dict[str, GenResult] = {}
        missing: list[GenRequest] = []
        for request in requests:
            found = [self.cache.get(k) for k in keys[request.request_id]]
            if all(c is not None for c in found):
                completions = tuple(
                    Completion(i, c.text, c.num_tokens, c.mean_logprob, c.finish_reason) for i, c in enumerate(found)
                )
                cached[request.request_id] = GenResult(request.request_id, completions)
                self.hits += request.sampling.n
            else:
                missing.append(request)
        fresh = {r.request_id: r for r in self.engine.generate(missing)} if missing else {}
        new: dict[str, Completion] = {}
        for request in missing:
            result = fresh[request.request_id]
            self.misses += request.sampling.n
            if result.error is None:
                for c in result.completions:
                    new[keys[request.request_id][c.index]] = c
        self.cache.put(new)
        return [cached.get(r.request_id) or fresh[r.request_id] for r in requests]
