"""Cache keys come from the code, output paths from the keys, and refs are checked when read."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from prefmill.config import validate_config
from prefmill.engines import engine_for, register_engine
from prefmill.flows import cache_keys
from prefmill.flows.preference import preference
from prefmill.refs import StaleRefError, write_table
from prefmill.sources import load_prompts
from tests.flows.test_golden import CASES, _BASE


@pytest.fixture(autouse=True)
def _fresh_hashes():
    cache_keys.clear()
    yield
    cache_keys.clear()


def _edited(monkeypatch, module: str) -> None:
    """Simulate an edit of `module`'s source (a comment appended), as after an upgrade."""
    original = cache_keys.module_source
    monkeypatch.setattr(cache_keys, "module_source", lambda name: original(name) + (b"\n# edited\n" if name == module else b""))
    cache_keys.clear()


class TestCodeHash:
    def test_follows_imports_of_prefmill_modules(self):
        deps = cache_keys.imported_modules("prefmill.tasks.preference.filters")
        assert "prefmill.tasks.preference.pairs" in deps and "prefmill.config" in deps
        # `from prefmill.tasks.rise import inject` names the module, not the package
        assert "prefmill.tasks.rise.inject" in cache_keys.imported_modules("prefmill.flows.stages")

    def test_changes_with_the_module_and_with_what_it_imports(self, monkeypatch):
        before = {m: cache_keys.code_hash(m) for m in ("prefmill.tasks.preference.filters", "prefmill.tasks.sampling.verify")}
        _edited(monkeypatch, "prefmill.tasks.preference.pairs")  # imported by filters, not by verify
        assert cache_keys.code_hash("prefmill.tasks.preference.filters") != before["prefmill.tasks.preference.filters"]
        assert cache_keys.code_hash("prefmill.tasks.sampling.verify") == before["prefmill.tasks.sampling.verify"]

    def test_key_parts(self, tmp_path):
        ref = write_table(pl.DataFrame({"a": [1]}), tmp_path / "t.parquet", where="t")
        assert cache_keys.key_part(ref) == ref.sha256
        assert cache_keys.key_part([ref, None, 3]) == f"[{ref.sha256},None,3]"
        with pytest.raises(TypeError, match="no key for a object"):
            cache_keys.key_part(object())


class TestRefs:
    def test_a_changed_or_truncated_file_is_refused(self, tmp_path):
        ref = write_table(pl.DataFrame({"a": [1, 2, 3]}), tmp_path / "t.parquet", where="t")
        assert ref.read()["a"].to_list() == [1, 2, 3] and ref.intact()
        data = bytearray(Path(ref.path).read_bytes())
        data[len(data) // 2] ^= 1  # same size, other content
        Path(ref.path).write_bytes(bytes(data))
        with pytest.raises(StaleRefError, match="content hash"):
            ref.read()
        Path(ref.path).write_bytes(Path(ref.path).read_bytes()[:20])
        with pytest.raises(StaleRefError, match="bytes"):
            ref.read()
        Path(ref.path).unlink()
        assert not ref.intact()


def _recipe(train: Path) -> dict:
    spec = CASES["preference-rise"]
    recipe = {"dataset": "keys", **_BASE, **spec, "source": {"path": str(train)} | spec["source"]}
    return validate_config(recipe).model_dump(mode="json")


def _files(store: Path) -> dict[str, int]:
    work = store / ".cache" / "keys"
    return {p.name: len(list(p.glob("*.parquet"))) for p in sorted(work.iterdir()) if p.is_dir()}


@pytest.mark.usefixtures("prefect_server")
def test_a_code_change_recomputes_that_stage_and_later_ones_but_sends_no_request(monkeypatch, tmp_path, gsm8k_test):
    recipe = _recipe(gsm8k_test.parent / "train.jsonl")
    cfg = validate_config(recipe)
    prompts = load_prompts(cfg.source)
    engine = engine_for(cfg.engine, references=dict(zip(prompts["question"], prompts["reference"])))
    register_engine(cfg.engine, engine)  # one engine instance across the runs, to count its requests
    store = tmp_path / "store"

    first = preference(config=recipe, store=str(store))
    seen, before = engine.requests_seen, _files(store)
    two = {"vote", "generate"}  # two outputs (the vote), two chunks (generate: 10 prompts, chunks of 5)
    assert seen > 0 and {s: n for s, n in before.items() if n != 1} == {s: 2 for s in two}

    _edited(monkeypatch, "prefmill.tasks.preference.pairs")
    second = preference(config=recipe, store=str(store))

    after = _files(store)
    recomputed = {stage for stage in after if after[stage] > before[stage]}
    # pairs changed; filters and RISE import it, mix-rise reads RISE's output (a new file, same content).
    # judge-pairwise reads the pairs, which came out the same: same content hash, same key, not recomputed.
    assert recomputed == {"pairs", "filters", "rise", "mix-rise"}
    assert engine.requests_seen == seen  # every generation came from the rollout cache
    assert second["version"] == first["version"] and not second["created"]  # same content


@pytest.mark.usefixtures("prefect_server")
def test_a_damaged_intermediate_file_is_recomputed_not_trusted(tmp_path, gsm8k_test):
    recipe = _recipe(gsm8k_test.parent / "train.jsonl")
    store = tmp_path / "store"
    first = preference(config=recipe, store=str(store))
    (verified,) = (store / ".cache" / "keys" / "verify").glob("*.parquet")
    good = verified.read_bytes()
    verified.write_bytes(good[: len(good) // 2])  # truncated, e.g. a full disk

    second = preference(config=recipe, store=str(store))

    assert verified.read_bytes() == good  # rebuilt under the same key-derived name
    assert second["version"] == first["version"] and not second["created"]
