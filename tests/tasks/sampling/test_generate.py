"""tasks/generate.py on the scripted engine and small hand-written engines."""

from __future__ import annotations

import polars as pl
import pytest

from prefmill.config import GenerateConfig
from prefmill.engines.base import Completion, GenResult
from prefmill.engines.scripted import ScriptedEngine
from prefmill.errors import EngineError
from prefmill.schemas.tables import SAMPLES
from prefmill.schemas.validate import conform
from prefmill.seeds import derived_seed
from prefmill.tasks.sampling.generate import build_messages, build_requests, generate


def _prompts(*ids: str) -> pl.DataFrame:
    return pl.DataFrame({"prompt_id": list(ids), "question": [f"question {i}?" for i in ids]})


def _echo(request, index, rng):
    return f"{request.request_id} sample {index} draws {rng.randint(0, 10**6)}"


class FailingEngine:
    """Answers every request except those in `bad`, which come back with an error."""

    fingerprint = "test:failing"

    def __init__(self, bad: set[str], *, reverse: bool = False) -> None:
        self.bad, self.reverse = bad, reverse

    def generate(self, requests):
        out = [
            GenResult(r.request_id, error=f"boom {r.request_id}")
            if r.request_id in self.bad
            else GenResult(
                r.request_id,
                tuple(Completion(i, f"{r.request_id} #{i}", 3, -0.25, "stop") for i in range(r.sampling.n)),
            )
            for r in requests
        ]
        return out[::-1] if self.reverse else out


class TestPromptSeed:
    def test_stable_and_distinct(self):
        assert derived_seed(1234, "p1") == derived_seed(1234, "p1")
        assert derived_seed(1234, "p1") != derived_seed(1234, "p2")
        assert derived_seed(1234, "p1") != derived_seed(1235, "p1")

    def test_fits_a_signed_32_bit_seed(self):
        seeds = [derived_seed(s, f"p{i}") for s in range(3) for i in range(200)]
        assert all(0 <= s < 2**31 for s in seeds)


class TestBuildMessages:
    def test_template_and_system_prompt(self):
        cfg = GenerateConfig(prompt_template="Q: {question}\nA:", system_prompt="Be brief.")
        assert build_messages("2+2?", cfg=cfg) == (
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Q: 2+2?\nA:"},
        )

    def test_braces_in_the_question_are_kept(self):
        cfg = GenerateConfig(prompt_template="{question}!")
        assert build_messages("is {x} > {y}", cfg=cfg) == ({"role": "user", "content": "is {x} > {y}!"},)


class TestBuildRequests:
    def test_sampling_from_config(self):
        cfg = GenerateConfig(n=3, temperature=0.5, top_p=0.9, max_tokens=64, seed=9, stop=("###",))
        (req,) = build_requests(_prompts("p1"), cfg=cfg)
        assert req.request_id == "p1"
        s = req.sampling
        assert (s.n, s.temperature, s.top_p, s.max_tokens, s.seed, s.stop) == (3, 0.5, 0.9, 64, derived_seed(9, "p1"), ("###",))


class TestGenerate:
    def test_n_rows_per_prompt_with_sample_ids(self):
        engine = ScriptedEngine(_echo, name="echo")

        out = generate(_prompts("p1", "p2"), engine=engine, cfg=GenerateConfig(n=3))

        assert out.height == 6
        assert out["sample_id"].to_list() == ["p1-0", "p1-1", "p1-2", "p2-0", "p2-1", "p2-2"]
        assert out["sample_index"].to_list() == [0, 1, 2, 0, 1, 2]
        assert out["prompt_id"].to_list() == ["p1"] * 3 + ["p2"] * 3
        assert out["engine"].unique().to_list() == ["scripted:echo"]
        assert out["error"].null_count() == 6
        assert out["finish_reason"].unique().to_list() == ["stop"]
        assert out["completion"][4].startswith("p2 sample 1 draws ")
        assert out["prompt"][0].to_list() == [
            {"role": "user", "content": "question p1?\n\nSolve the problem step by step. End with a line '#### <answer>'."}
        ]
        assert engine.calls == 1 and engine.requests_seen == 2

    def test_output_conforms_to_samples_schema(self):
        out = generate(_prompts("p1"), engine=ScriptedEngine(_echo), cfg=GenerateConfig(n=2))
        assert conform(out, SAMPLES, where="generate output").num_rows == 2

    def test_seeds_and_samples_repeat_across_calls(self):
        cfg = GenerateConfig(n=2, seed=42)
        first = generate(_prompts("p1", "p2"), engine=ScriptedEngine(_echo), cfg=cfg)
        second = generate(_prompts("p1", "p2"), engine=ScriptedEngine(_echo), cfg=cfg)
        assert first.equals(second)
        assert first["seed"].to_list() == [derived_seed(42, "p1")] * 2 + [derived_seed(42, "p2")] * 2

    def test_samples_independent_of_batch_composition(self):
        cfg = GenerateConfig(n=2, seed=42)
        together = generate(_prompts("p1", "p2", "p3"), engine=ScriptedEngine(_echo), cfg=cfg)
        alone = generate(_prompts("p2"), engine=ScriptedEngine(_echo), cfg=cfg)
        assert together.filter(pl.col("prompt_id") == "p2").equals(alone)

    def test_base_seed_changes_the_samples(self):
        a = generate(_prompts("p1"), engine=ScriptedEngine(_echo), cfg=GenerateConfig(n=1, seed=1))
        b = generate(_prompts("p1"), engine=ScriptedEngine(_echo), cfg=GenerateConfig(n=1, seed=2))
        assert a["completion"][0] != b["completion"][0]

    def test_failed_request_becomes_n_error_rows_when_allowed(self):
        engine = FailingEngine({"p2"})

        out = generate(_prompts("p1", "p2"), engine=engine, cfg=GenerateConfig(n=3, max_failed_share=0.5))

        failed = out.filter(pl.col("prompt_id") == "p2")
        assert failed.select("sample_id", "completion", "num_tokens", "mean_logprob", "finish_reason", "error").rows() == [
            ("p2-0", "", 0, None, "error", "boom p2"),
            ("p2-1", "", 0, None, "error", "boom p2"),
            ("p2-2", "", 0, None, "error", "boom p2"),
        ]
        assert failed["seed"].to_list() == [derived_seed(1234, "p2")] * 3
        assert out.filter(pl.col("prompt_id") == "p1")["error"].null_count() == 3

    def test_failures_over_the_allowed_share_raise(self):
        with pytest.raises(EngineError) as info:
            generate(_prompts("p1", "p2", "p3"), engine=FailingEngine({"p2", "p3"}), cfg=GenerateConfig(n=2, max_failed_share=0.5))
        assert info.value.message == "generate: 2 of 3 requests failed in the engine; first error: boom p2"
        assert "max_failed_share" in info.value.hint

    def test_default_share_tolerates_no_failure(self):
        with pytest.raises(EngineError, match="1 of 4 requests failed"):
            generate(_prompts("a", "b", "c", "d"), engine=FailingEngine({"c"}), cfg=GenerateConfig(n=1))

    def test_results_matched_by_request_id_not_position(self):
        out = generate(_prompts("p1", "p2", "p3"), engine=FailingEngine(set(), reverse=True), cfg=GenerateConfig(n=2))
        assert out.select("sample_id", "completion").rows() == [
            ("p1-0", "p1 #0"), ("p1-1", "p1 #1"), ("p2-0", "p2 #0"), ("p2-1", "p2 #1"), ("p3-0", "p3 #0"), ("p3-1", "p3 #1"),
        ]

    def test_failed_request_matched_by_id_when_reordered(self):
        out = generate(
            _prompts("p1", "p2", "p3"), engine=FailingEngine({"p1"}, reverse=True), cfg=GenerateConfig(n=1, max_failed_share=0.5)
        )
        assert out.select("sample_id", "error").rows() == [("p1-0", "boom p1"), ("p2-0", None), ("p3-0", None)]

    def test_no_prompts_no_rows_no_engine_call(self):
        engine = ScriptedEngine(_echo)
        out = generate(_prompts(), engine=engine, cfg=GenerateConfig())
        assert out.height == 0 and engine.calls == 0
        assert "sample_id" in out.columns
