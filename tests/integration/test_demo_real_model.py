"""The demo recipe end to end on the real model: vLLM, a Prefect server, Parquet versions, DuckDB."""

from __future__ import annotations

import json

import datasets
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from prefmill.cli import app
from prefmill.query import run_query
from prefmill.schemas.tables import PAIRS, SCORED, VOTES
from tests.integration.conftest import DEMO

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]


def test_demo_run_publishes_queryable_version_and_rerun_hits_cache(tmp_path, real_engine, demo_config):
    store = tmp_path / "store"
    runner = CliRunner()
    calls_before = real_engine.calls

    result = runner.invoke(app, ["run", str(DEMO), "--store", str(store)])

    assert result.exit_code == 0, result.output
    version_dir = store / demo_config.dataset / "v0001"
    assert result.output.strip().splitlines()[-1] == str(version_dir)
    # One batched engine call per stage: generate, pointwise judge, pairwise judge, RISE edits, and RISE
    # continuations when an edit passed the step checks.
    engine_calls = real_engine.calls - calls_before
    assert engine_calls in (4, 5)
    manifest = json.loads((version_dir / "manifest.json").read_text())
    stats = manifest["stats"]
    n_prompts = demo_config.source.limit - stats["decontamination"]["dropped"]
    n = demo_config.generate.n
    samples_file = version_dir / "data" / "samples" / "train-00000-of-00001.parquet"
    pairs_file = version_dir / "data" / "pairs" / "train-00000-of-00001.parquet"
    votes_file = version_dir / "data" / "votes" / "train-00000-of-00001.parquet"
    assert pq.read_schema(samples_file).remove_metadata() == SCORED
    assert pq.read_schema(pairs_file).remove_metadata() == PAIRS
    assert pq.read_schema(votes_file).remove_metadata() == VOTES
    assert manifest["files"]["data/samples/train-00000-of-00001.parquet"]["rows"] == n_prompts * n
    assert manifest["files"]["data/votes/train-00000-of-00001.parquet"]["rows"] == n_prompts
    assert manifest["engine"] == real_engine.fingerprint and "float" in manifest["engine"]
    assert manifest["config"]["generate"]["n"] == n

    samples = pq.read_table(samples_file).to_pylist()
    assert all(s["num_tokens"] > 0 and s["mean_logprob"] is not None for s in samples)
    # Guided decoding keeps even a 135M judge parsable: every judged sample has a 1-10 score.
    judged = [s for s in samples if s["judge_score"] is not None]
    assert len(judged) >= len(samples) // 2 and all(1 <= s["judge_score"] <= 10 for s in judged)
    assert stats["samples"]["judge"]["judged"] == len(judged)
    assert {s["finish_reason"] for s in samples} <= {"stop", "length"}
    # A sample is correct exactly when its extracted answer equals the reference (math-verify).
    assert all(s["correct"] == (s["extracted"] is not None and float(s["extracted"]) == float(s["reference_answer"]))
               for s in samples if s["extracted"] is None or s["extracted"].replace(".", "").lstrip("-").isdigit())

    query = runner.invoke(app, ["query", "select count(*) as n from pairs", "--store", str(store), "--format", "json"])
    assert query.exit_code == 0, query.output
    assert json.loads(query.output) == [{"n": manifest["stats"]["pairs"]["pairs"]}]
    assert manifest["stats"]["pairs"]["pairs"] > 0

    # TRL's conversational preference format, loadable by `datasets`, with strategy, scores and provenance.
    ds = datasets.load_dataset("parquet", data_files=str(pairs_file), split="train")
    row = ds[0]
    assert row["prompt"][0]["role"] == "user" and row["chosen"][0]["role"] == "assistant"
    assert row["rejected"][0]["content"] != row["chosen"][0]["content"]
    assert row["strategy"] == demo_config.pairs.strategy and row["rejected_engine"] == real_engine.fingerprint
    # RISE (on in the demo): the model edits one step of a correct solution (the reference, here); rule-based
    # edits stand in where every model edit was dropped. Each pair says what was edited and where.
    rise = stats["rise"]
    assert rise["edits"] == rise["kept"] + sum(rise["dropped"].values()) and rise["pairs"] > 0
    assert set(rise["by_editor"]) <= {"llm", "rules"} and sum(rise["by_editor"].values()) == rise["kept"]
    rise_rows = [r for r in ds if r["strategy"] == "rise"]
    assert len(rise_rows) == rise["pairs"] <= demo_config.rise.ratio * (len(ds) - len(rise_rows))
    for r in rise_rows:
        text, span = r["rejected"][0]["content"], r["edit_span"]
        assert r["error_type"] and r["edited_step"] >= 0 and r["edit_diff"] and 0 <= span["start"] < span["end"] <= len(text)
        assert r["chosen_source"] in ("reference", "sample") and r["rejected_engine"] in (real_engine.fingerprint, "rules")
    assert row["chosen_engine"] in (real_engine.fingerprint, "reference")
    assert row["margin"] == row["chosen_score"] - row["rejected_score"]
    # Pairwise judging ran in both orders on every pair it kept.
    judged_pairs = run_query(store, "select count(*) from pairs where judge_agreement is not null or swap_consistent is not null")
    assert judged_pairs.item() >= 1
    assert set(stats["pairs"]["separability"]) >= {"margin_histogram", "same_model_share", "length_diff_chars"}

    again = runner.invoke(app, ["run", str(DEMO), "--store", str(store)])

    assert again.exit_code == 0, again.output
    assert real_engine.calls == calls_before + engine_calls  # the second run never called the engine
    assert "unchanged" in again.output
    assert sorted(p.name for p in (store / demo_config.dataset).iterdir()) == ["v0001"]


def test_same_seed_gives_same_samples_and_prefix_continuation_works(real_engine):
    from prefmill.engines.base import GenRequest, Sampling

    sampling = Sampling(n=2, max_tokens=24, seed=7)
    chat = GenRequest("chat", messages=({"role": "user", "content": "What is 12 + 30?"},), sampling=sampling)
    prefix = real_engine.render(chat) + "12 + 30 ="
    cont = GenRequest("cont", prefix=prefix, sampling=sampling)

    first = real_engine.generate([chat, cont])
    second = real_engine.generate([cont, chat])

    assert [c.text for c in first[0].completions] == [c.text for c in second[1].completions]
    assert [c.text for c in first[1].completions] == [c.text for c in second[0].completions]
    assert all(len(r.completions) == 2 and r.error is None for r in first)
    assert all(0 < c.num_tokens <= 24 for r in first for c in r.completions)


def test_seeded_batch_larger_than_one_scheduler_step(real_engine):
    """48 seeded prompts of ~110 tokens exceed one 4096-token step: prefill must not be chunked on CPU."""
    from prefmill.config import GenerateConfig, SourceConfig
    from prefmill.sources import load_prompts
    from prefmill.tasks.sampling.generate import generate
    from tests.conftest import GSM8K

    prompts = load_prompts(SourceConfig(path=str(GSM8K / "test.jsonl"), limit=48))
    samples = generate(prompts, engine=real_engine, cfg=GenerateConfig(n=2, max_tokens=2))

    assert samples.height == 96 and samples["error"].null_count() == 96
