"""prefmill/engines/cached.py: rollouts are generated once, then served from disk."""

from __future__ import annotations

from dataclasses import replace

from prefmill.engines.base import GenRequest, GenResult, Sampling
from prefmill.engines.cached import CachingEngine, RolloutCache, sample_key
from prefmill.engines.scripted import ScriptedEngine


def _policy(request, index, rng):
    return f"{request.messages[-1]['content']} sample {index} {rng.randint(0, 10**6)}"


def _req(rid: str, *, n: int = 2, seed: int = 1, content: str | None = None) -> GenRequest:
    """The key is what is asked, not the request id: the content defaults to the id."""
    message = {"role": "user", "content": content or f"question {rid}"}
    return GenRequest(rid, messages=(message,), sampling=Sampling(n=n, seed=seed))


def test_second_call_is_served_from_cache_and_survives_a_restart(tmp_path):
    inner = ScriptedEngine(_policy)
    engine = CachingEngine(inner, RolloutCache(tmp_path))
    first = engine.generate([_req("a"), _req("b")])

    again = engine.generate([_req("b"), _req("a")])
    restarted = CachingEngine(ScriptedEngine(_policy), RolloutCache(tmp_path))
    after_restart = restarted.generate([_req("a")])

    assert inner.calls == 1 and (engine.hits, engine.misses) == (4, 4)
    assert [r.request_id for r in again] == ["b", "a"]
    assert [c.text for c in again[1].completions] == [c.text for c in first[0].completions]
    assert restarted.engine.calls == 0 and restarted.hits == 2
    assert after_restart[0].completions == first[0].completions


def test_misses_on_other_sampling_prefix_or_engine(tmp_path):
    cache = RolloutCache(tmp_path)
    base = _req("a")
    keys = {
        sample_key("e1", base, 0),
        sample_key("e1", replace(base, sampling=replace(base.sampling, seed=5)), 0),
        sample_key("e1", _req("a", content="other"), 0),
        sample_key("e1", replace(base, sampling=replace(base.sampling, temperature=0.3)), 0),
        sample_key("e2", base, 0),
        sample_key("e1", base, 1),
    }
    assert len(keys) == 6
    # n is not part of the key: the first samples of n=4 are the samples of n=2.
    assert sample_key("e1", base, 0) == sample_key("e1", _req("a", n=4), 0)
    # sample i of seed s is the draw seeded s + i, whichever request asks for it (vLLM's rule for n > 1)
    assert sample_key("e1", base, 1) == sample_key("e1", replace(base, sampling=replace(base.sampling, seed=2)), 0)
    later = replace(base, sampling=replace(base.sampling, first_index=1, n=1))
    assert sample_key("e1", later, 0) == sample_key("e1", base, 1)
    engine = CachingEngine(ScriptedEngine(_policy), cache)
    engine.generate([_req("a", n=2)])
    inner = engine.engine
    seen = inner.requests_seen
    four = engine.generate([_req("a", n=4)])  # partial hit: only samples 2 and 3 are generated
    assert inner.calls == 2 and len(cache) == 4 and (engine.hits, engine.misses) == (2, 4)
    assert inner.requests_seen == seen + 1
    assert [c.index for c in four[0].completions] == [0, 1, 2, 3]
    alone = CachingEngine(ScriptedEngine(_policy), RolloutCache(tmp_path / "other")).generate([_req("a", n=4)])
    assert [c.text for c in four[0].completions] == [c.text for c in alone[0].completions]  # the same draws


def test_failed_requests_are_not_cached(tmp_path):
    class Failing:
        fingerprint = "failing"
        calls = 0

        def generate(self, requests):
            self.calls += 1
            return [GenResult(r.request_id, error="RuntimeError: boom") for r in requests]

    inner = Failing()
    engine = CachingEngine(inner, RolloutCache(tmp_path))
    assert engine.generate([_req("a")])[0].error == "RuntimeError: boom"
    assert engine.generate([_req("a")])[0].error == "RuntimeError: boom"
    assert inner.calls == 2 and len(engine.cache) == 0


def _broken_shards(folder):
    """Three shards: a good one, a truncated one (a killed copy, a full disk), one with other columns."""
    import polars as pl

    engine = CachingEngine(ScriptedEngine(_policy), RolloutCache(folder))
    engine.generate([_req("a")])
    engine.generate([_req("b")])
    good, truncated = sorted(folder.glob("shard-*.parquet"), key=lambda p: p.stat().st_mtime_ns)
    truncated.write_bytes(truncated.read_bytes()[:25])
    pl.DataFrame({"other": [1]}).write_parquet(folder / "shard-zzzz.parquet")
    return good, truncated, folder / "shard-zzzz.parquet"


def test_unreadable_shards_are_moved_aside_with_a_warning(tmp_path, caplog):
    good, truncated, foreign = _broken_shards(tmp_path)

    with caplog.at_level("WARNING", logger="prefmill"):
        cache = RolloutCache(tmp_path)

    assert len(cache) == 2  # the good shard's two samples
    assert good.is_file()
    for bad in (truncated, foreign):
        assert not bad.exists() and bad.with_name(bad.name + ".corrupt").is_file()
    messages = [r.getMessage() for r in caplog.records if r.name == "prefmill"]
    assert len(messages) == 2 and all("unreadable rollout-cache shard" in m and "moved aside" in m for m in messages)
    assert all(len(m) < 600 for m in messages)


def test_samples_of_an_unreadable_shard_are_generated_again(tmp_path):
    _broken_shards(tmp_path)
    inner = ScriptedEngine(_policy)
    engine = CachingEngine(inner, RolloutCache(tmp_path))

    engine.generate([_req("a"), _req("b")])

    assert (engine.hits, engine.misses) == (2, 2)  # "a" from the good shard, "b" again
    assert len(RolloutCache(tmp_path)) == 4  # and stored again, so the next run hits
