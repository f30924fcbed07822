"""A persisted rollout cache in front of any engine, so MC labelling, OmegaPRM and self-consistency
reuse each other's samples across stages, runs and crashes.

A sample is keyed by (engine fingerprint, what is continued, sampling without `n`, sample index):
the same prefix sampled with the same seed gives the same text, so a request is served from the cache
when every one of its n samples is there. A partial hit regenerates the request whole (samples of
one seeded request are not independent of n in every engine) and stores all of it.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import polars as pl

from prefmill.engines.base import Completion, Engine, GenRequest, GenResult, sample_seed
from prefmill.errors import cut, os_reason
from prefmill.store_location import Location, as_location

log = logging.getLogger("prefmill")

_COLUMNS = {
    "key": pl.String,
    "text": pl.String,
    "num_tokens": pl.Int32,
    "mean_logprob": pl.Float64,
    "finish_reason": pl.String,
}


def sample_key(fingerprint: str, request: GenRequest, index: int) -> str:
    """The key of sample `index` of `request`: what is continued, the sampling without n, and the
    sample's own seed (`base.sample_seed`), so requests for overlapping samples share them."""
    sampling = asdict(request.sampling)
    for name in ("n", "seed", "first_index"):
        sampling.pop(name)
    seed = sample_seed(request.sampling, index)
    what = {"messages": request.messages, "prefix": request.prefix, "continue_final": request.continue_final}
    blob = json.dumps([fingerprint, what, sampling, seed if seed is not None else ["unseeded", index]],
                      sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()


class RolloutCache:
    """Append-only Parquet shards in a folder, local or on object storage (`<store>/.cache/rollouts`).
    Every shard is written whole under a unique name (a rename locally, one put on an object store),
    so concurrent runs never see a part of one and never overwrite each other's."""

    def __init__(self, folder: Path | Location) -> None:
        self.folder = as_location(folder)
        self.folder.mkdir()
        self._lock = threading.Lock()
        self._entries: dict[str, Completion] = {}
        for shard in self.folder.glob("shard-*.parquet"):
            try:
                data = shard.read_bytes()
            except FileNotFoundError:  # another run moved it aside meanwhile
                continue
            try:
                rows = pl.read_parquet(io.BytesIO(data)).select(list(_COLUMNS)).rows(named=True)
            except Exception as exc:  # truncated, not Parquet, other columns: polars/arrow raise several types
                self._move_aside(shard, exc)
                continue
            for row in rows:
                self._entries[row["key"]] = Completion(
                    index=0, text=row["text"], num_tokens=row["num_tokens"],
                    mean_logprob=row["mean_logprob"], finish_reason=row["finish_reason"],
                )

    @staticmethod
    def _move_aside(shard: Location, exc: Exception) -> None:
        """An unreadable shard must not break every run of the store: its samples are generated again,
        and the file is kept as `<shard>.corrupt` (which the loader ignores) for a look."""
        aside = shard.sibling(shard.name + ".corrupt")
        try:
            shard.move_to(aside)
            where = f"moved aside to {aside.name}"
        except OSError as move_exc:
            where = f"left in place ({os_reason(move_exc)})"
        log.warning("%s: unreadable rollout-cache shard (%s: %s); %s, its samples will be generated again",
                    shard, type(exc).__name__, cut(exc), where)

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
        buffer = io.BytesIO()
        frame.write_parquet(buffer)
        (self.folder / f"shard-{uuid.uuid4().hex}.parquet").write_whole(buffer.getvalue())
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
        """Serve every sample the cache holds; ask the engine only for the rest. A seeded request whose
        first m samples are cached asks for samples m..n-1 alone (`first_index`); an unseeded one whole."""
        found: dict[str, list[Completion]] = {}
        missing: list[GenRequest] = []
        for request in requests:
            hits = []
            for i in range(request.sampling.n):
                if (c := self.cache.get(sample_key(self.fingerprint, request, i))) is None:
                    break
                hits.append(Completion(i, c.text, c.num_tokens, c.mean_logprob, c.finish_reason))
            if request.sampling.seed is None and len(hits) < request.sampling.n:
                hits = []
            found[request.request_id] = hits
            self.hits += len(hits)
            if len(hits) < request.sampling.n:
                m = len(hits)
                missing.append(replace(request, sampling=replace(
                    request.sampling, n=request.sampling.n - m, first_index=request.sampling.first_index + m)))
        fresh = {r.request_id: r for r in self.engine.generate(missing)} if missing else {}
        new: dict[str, Completion] = {}
        for tail in missing:
            result = fresh[tail.request_id]
            self.misses += tail.sampling.n
            if result.error is None:
                for c in result.completions:
                    new[sample_key(self.fingerprint, tail, c.index)] = c
        self.cache.put(new)
        return [self._merged(r, found[r.request_id], fresh.get(r.request_id)) for r in requests]

    @staticmethod
    def _merged(request: GenRequest, hits: list[Completion], tail: GenResult | None) -> GenResult:
        if tail is None:
            return GenResult(request.request_id, tuple(hits))
        if tail.error is not None:
            return GenResult(request.request_id, error=tail.error, prompt_tokens=tail.prompt_tokens)
        shifted = tuple(replace(c, index=len(hits) + c.index) for c in sorted(tail.completions, key=lambda c: c.index))
        return GenResult(request.request_id, tuple(hits) + shifted, prompt_tokens=tail.prompt_tokens)
