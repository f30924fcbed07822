"""engines/scripted.py: the deterministic engine and the GSM8K policy with a known error rate."""

from __future__ import annotations

import json
import random

import pytest

from prefmill.engines.base import GenRequest, Sampling
from prefmill.engines.scripted import ScriptedEngine, gsm8k_policy, last_user_text
from prefmill.tasks.verify import answers_match, extract_answer, reference_final_answer


@pytest.fixture(scope="module")
def gsm8k_rows(gsm8k_test) -> list[dict]:
    with gsm8k_test.open() as fh:
        return [json.loads(next(fh)) for _ in range(25)]


def _request(question: str, *, rid: str = "r", seed: int | None = 3, n: int = 4) -> GenRequest:
    return GenRequest(
        request_id=rid,
        messages=({"role": "system", "content": "sys"}, {"role": "user", "content": f"{question}\n\nSolve it."}),
        sampling=Sampling(n=n, seed=seed),
    )


class TestLastUserText:
    def test_messages_and_prefix(self):
        req = GenRequest("r", messages=({"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                                        {"role": "user", "content": "c"}))
        assert last_user_text(req) == "c"
        assert last_user_text(GenRequest("r", prefix="pre")) == "pre"


class TestGsm8kPolicy:
    def test_p_error_0_reproduces_the_reference_answer(self, gsm8k_rows):
        engine = ScriptedEngine(gsm8k_policy({r["question"]: r["answer"] for r in gsm8k_rows}, p_error=0.0))

        results = engine.generate([_request(r["question"], rid=f"r{i}") for i, r in enumerate(gsm8k_rows)])

        for row, result in zip(gsm8k_rows, results):
            assert len(result.completions) == 4
            for c in result.completions:
                assert extract_answer(c.text) == reference_final_answer(row["answer"])
                assert c.text == row["answer"].rsplit("####", 1)[0].strip() + "\n#### " + row["answer"].rsplit("####", 1)[1].strip()

    def test_p_error_1_always_gives_a_wrong_final_answer(self, gsm8k_rows):
        engine = ScriptedEngine(gsm8k_policy({r["question"]: r["answer"] for r in gsm8k_rows}, p_error=1.0))

        results = engine.generate([_request(r["question"], rid=f"r{i}", n=8) for i, r in enumerate(gsm8k_rows)])

        for row, result in zip(gsm8k_rows, results):
            reference = reference_final_answer(row["answer"])
            for c in result.completions:
                answer = extract_answer(c.text)
                assert answer is not None and answer != reference
                assert answers_match(reference, answer) is False

    def test_wrong_answer_shifts_by_1_to_9(self):
        policy = gsm8k_policy({"Q?": "a = 5\n#### 5"}, p_error=1.0)
        answers = {int(extract_answer(policy(_request("Q?"), i, random.Random(i)))) for i in range(200)}
        assert answers == set(range(6, 15))

    def test_deterministic_per_request_seed_and_index(self, gsm8k_rows):
        policy = gsm8k_policy({r["question"]: r["answer"] for r in gsm8k_rows}, p_error=0.5)
        q = gsm8k_rows[2]["question"]

        def texts(rid, seed):
            return [c.text for c in ScriptedEngine(policy).generate([_request(q, rid=rid, seed=seed, n=16)])[0].completions]

        assert texts("a", 1) == texts("a", 1)
        assert texts("a", 1) != texts("a", 2)
        assert texts("a", 1) != texts("b", 1)
        assert len(set(texts("a", 1))) > 1  # the index matters too

    def test_unknown_question_has_no_answer(self):
        engine = ScriptedEngine(gsm8k_policy({"Q?": "#### 1"}, p_error=0.0))
        (result,) = engine.generate([_request("Something else entirely")])
        assert [c.text for c in result.completions] == ["I am not sure how to solve this."] * 4
        assert extract_answer(result.completions[0].text) is None


class TestScriptedEngine:
    def test_truncates_at_max_tokens_words(self):
        engine = ScriptedEngine(lambda req, i, rng: "one two three four five")
        (result,) = engine.generate([GenRequest("r", prefix="p", sampling=Sampling(n=1, max_tokens=3, seed=0))])
        c = result.completions[0]
        assert (c.text, c.num_tokens, c.finish_reason) == ("one two three", 3, "length")

    def test_empty_text_has_no_logprob(self):
        engine = ScriptedEngine(lambda req, i, rng: "")
        (result,) = engine.generate([GenRequest("r", prefix="p", sampling=Sampling(n=2, seed=0))])
        assert [(c.index, c.text, c.num_tokens, c.mean_logprob, c.finish_reason) for c in result.completions] == [
            (0, "", 0, None, "stop"), (1, "", 0, None, "stop"),
        ]

    def test_logprobs_in_range_and_reproducible(self):
        engine = ScriptedEngine(lambda req, i, rng: "a b c")
        reqs = [GenRequest(f"r{i}", prefix="p", sampling=Sampling(n=3, seed=5)) for i in range(4)]
        first = engine.generate(reqs)
        second = engine.generate(reqs)
        assert first == second
        assert all(-2.0 <= c.mean_logprob <= -0.1 for r in first for c in r.completions)
        assert (engine.calls, engine.requests_seen) == (2, 8)
        assert engine.fingerprint == "scripted:scripted"


class TestGsm8kPolicyLookup:
    def test_reference_without_steps_is_always_answered_right(self):
        # Nothing to get wrong: p_error has no effect on a bare `#### x` reference.
        policy = gsm8k_policy({"Q?": "#### 5"}, p_error=1.0)
        assert {policy(_request("Q?"), i, random.Random(i)) for i in range(20)} == {"#### 5"}
    def test_question_contained_in_another_gets_its_own_solution(self):
        policy = gsm8k_policy({"What is 2 + 2?": "2 + 2 = 4\n#### 4",
                               "Tom asks: What is 2 + 2? Then add 3.": "2 + 2 = 4\n4 + 3 = 7\n#### 7"}, p_error=0.0)
        text = policy(_request("Tom asks: What is 2 + 2? Then add 3."), 0, random.Random(0))
        assert extract_answer(text) == "7"
