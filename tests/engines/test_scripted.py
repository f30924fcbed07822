"""engines/scripted.py: the deterministic engine and the GSM8K policy with a known error rate."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest

from prefmill.engines.base import GenRequest, Sampling
from prefmill.engines.scripted_chains import gsm8k_chain_policy
from prefmill.engines.scripted import (
    ScriptedEngine,
    corrupt_step,
    gsm8k_policy,
    last_user_text,
    partial_answer,
)
from prefmill.answers import answers_match, extract_answer, reference_final_answer


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

    def test_deterministic_per_prompt_seed_and_index_never_the_request_id(self, gsm8k_rows):
        policy = gsm8k_policy({r["question"]: r["answer"] for r in gsm8k_rows}, p_error=0.5)
        q = gsm8k_rows[2]["question"]

        def texts(rid, seed):
            return [c.text for c in ScriptedEngine(policy).generate([_request(q, rid=rid, seed=seed, n=16)])[0].completions]

        assert texts("a", 1) == texts("a", 1)
        assert texts("a", 1) != texts("a", 3)
        assert texts("a", 1) == texts("b", 1)  # as a seeded real engine: the request id plays no part
        assert texts("a", 1)[1:] == texts("a", 2)[:-1]  # sample i of seed s is the draw seeded s + i
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


# --- the chain policy: continuations from step prefixes with a known first error ---------------------

def _continue(question: str, partial: str, *, rid: str = "c|1", seed: int = 7, n: int = 8) -> GenRequest:
    return GenRequest(
        rid,
        messages=({"role": "user", "content": f"{question}\n\nSolve it."}, {"role": "assistant", "content": partial}),
        sampling=Sampling(n=n, seed=seed),
        continue_final=True,
    )


def _reference_chain(answer: str) -> str:
    body, _, final = answer.rpartition("####")
    return "\n".join([line.strip() for line in body.split("\n") if line.strip()] + [f"#### {final.strip()}"])


def _final(text: str) -> str:
    return extract_answer(text)


class TestCorruptStep:
    def test_annotation_result_and_shown_number_change_together(self):
        assert corrupt_step("Natalia sold 48/2 = <<48/2=24>>24 clips in May.", 3) == (
            "Natalia sold 48/2 = <<48/2=27>>27 clips in May."
        )

    def test_decimal_result_and_last_annotation(self):
        assert corrupt_step("a = $<<12/60=0.2>>0.2, b = <<0.2*50=10>>10.", 5) == "a = $<<12/60=0.2>>0.2, b = <<0.2*50=15>>15."
        assert corrupt_step("x = <<1/2=0.5>>0.5", 2) == "x = <<1/2=2.5>>2.5"

    def test_shown_number_that_is_not_the_result_stays(self):
        assert corrupt_step("<<2*3=6>> 6 boxes", 1) == "<<2*3=7>> 6 boxes"

    def test_without_annotation_the_last_number_changes(self):
        assert corrupt_step("She has 1,000 apples and 3 pears", 4) == "She has 1,000 apples and 7 pears"

    def test_no_number_nothing_to_corrupt(self):
        assert corrupt_step("So she is happy.", 2) is None


class TestGsm8kChainPolicy:
    @pytest.fixture(scope="class")
    def refs(self, gsm8k_rows) -> dict[str, str]:
        return {r["question"]: r["answer"] for r in gsm8k_rows}

    def test_p_error_0_chains_are_the_references(self, refs):
        policy = gsm8k_chain_policy(refs, p_error=0.0)
        for question, answer in refs.items():
            for index in range(3):
                assert policy.chain(question, index) == (_reference_chain(answer), None)
                assert policy.first_error_step(question, index) is None

    def test_p_error_1_chain_errs_at_its_first_error_step_only(self, refs):
        policy = gsm8k_chain_policy(refs, p_error=1.0)
        for question, answer in refs.items():
            reference = _reference_chain(answer).split("\n")
            for index in range(4):
                text, e = policy.chain(question, index)
                lines = text.split("\n")
                assert e == policy.first_error_step(question, index) and e is not None
                assert [i for i, (a, b) in enumerate(zip(lines[:-1], reference[:-1])) if a != b] == [e]
                shift = Decimal(_final(text)) - Decimal(_final(answer))
                assert 1 <= shift <= 9
                assert answers_match(reference_final_answer(answer), _final(text)) is False

    def test_error_rate_and_steps_follow_p_error(self, refs):
        policy = gsm8k_chain_policy(refs, p_error=0.3)
        errors = [policy.first_error_step(q, i) for q in refs for i in range(40)]
        assert 0.25 <= sum(e is not None for e in errors) / len(errors) <= 0.35
        assert len({e for e in errors if e is not None}) >= 3  # not always the same step

    def test_deterministic_and_salted(self, refs):
        a, b = gsm8k_chain_policy(refs, p_error=0.5), gsm8k_chain_policy(refs, p_error=0.5)
        salted = gsm8k_chain_policy(refs, p_error=0.5, seed_salt="other")
        chains = [(q, i) for q in refs for i in range(4)]
        assert [a.chain(q, i) for q, i in chains] == [b.chain(q, i) for q, i in chains]
        assert [a.chain(q, i) for q, i in chains] != [salted.chain(q, i) for q, i in chains]

    def test_fresh_turn_sample_index_is_the_chain(self, refs):
        policy = gsm8k_chain_policy(refs, p_error=0.6)
        question = next(iter(refs))
        [result] = ScriptedEngine(policy).generate([_request(question, n=6)])
        assert [c.text for c in result.completions] == [policy.chain(question, i)[0] for i in range(6)]

    def test_correct_prefix_continues_right_at_rate_q(self, refs):
        policy = gsm8k_chain_policy(refs, p_error=0.0, q=0.7)
        requests, expected = [], {}
        for n, (question, answer) in enumerate(refs.items()):
            steps = _reference_chain(answer).split("\n")[:-1]
            for k in range(len(steps)):  # a later step is left to err on
                if not any(corrupt_step(s, 1) for s in steps[k:]):
                    continue
                rid = f"q{n}|{k}"
                requests.append(_continue(question, "\n".join(steps[:k]) + "\n" if k else "", rid=rid, n=16))
                expected[rid] = (reference_final_answer(answer), "\n".join(steps[:k]) + "\n" if k else "")
        results = ScriptedEngine(policy).generate(requests)

        right = total = 0
        for result in results:
            reference, prefix = expected[result.request_id]
            for c in result.completions:
                full = prefix + c.text
                total += 1
                right += answers_match(reference, _final(full)) is True
        assert total >= 500
        assert 0.65 <= right / total <= 0.75

    def test_correct_continuation_completes_the_reference_chain(self, refs):
        policy = gsm8k_chain_policy(refs, p_error=0.0, q=1.0)
        question, answer = next(iter(refs.items()))
        steps = _reference_chain(answer).split("\n")
        [result] = ScriptedEngine(policy).generate([_continue(question, steps[0] + "\n")])
        assert {steps[0] + "\n" + c.text for c in result.completions} == {_reference_chain(answer)}
        # A prefix cut without its newline is continued on a new line.
        [result] = ScriptedEngine(policy).generate([_continue(question, steps[0])])
        assert {steps[0] + c.text for c in result.completions} == {_reference_chain(answer)}

    def test_prefix_with_a_corrupted_step_always_ends_wrong(self, refs):
        policy = gsm8k_chain_policy(refs, p_error=0.0, q=1.0)
        for n, (question, answer) in enumerate(refs.items()):
            steps = _reference_chain(answer).split("\n")[:-1]
            bad = next(i for i, s in enumerate(steps) if corrupt_step(s, 1))
            for k in range(bad + 1, len(steps) + 1):
                wrong = steps[:bad] + [corrupt_step(steps[bad], 2)] + steps[bad + 1 : k]
                prefix = "\n".join(wrong) + "\n"
                [result] = ScriptedEngine(policy).generate([_continue(question, prefix, rid=f"{n}|{k}")])
                for c in result.completions:
                    assert answers_match(reference_final_answer(answer), _final(prefix + c.text)) is False

    def test_complete_prefix_needs_no_continuation(self, refs):
        policy = gsm8k_chain_policy(refs, p_error=0.0, q=0.0)
        question, answer = next(iter(refs.items()))
        [result] = ScriptedEngine(policy).generate([_continue(question, _reference_chain(answer) + "\n")])
        assert {c.text for c in result.completions} == {""}

    def test_continuations_are_deterministic_per_request(self, refs):
        policy = gsm8k_chain_policy(refs, p_error=0.0, q=0.5)
        question, answer = next(iter(refs.items()))
        prefix = _reference_chain(answer).split("\n")[0] + "\n"
        texts = lambda rid, seed: [  # noqa: E731
            c.text for c in ScriptedEngine(policy).generate([_continue(question, prefix, rid=rid, seed=seed, n=16)])[0].completions
        ]
        assert texts("a", 1) == texts("a", 1)
        assert texts("a", 1) != texts("a", 2)
        assert len(set(texts("a", 1))) > 1

    def test_unknown_question_and_bad_parameters(self, refs):
        policy = gsm8k_chain_policy(refs, p_error=0.0)
        [result] = ScriptedEngine(policy).generate([_continue("What is love?", "a\n", n=1)])
        assert result.completions[0].text == "I am not sure how to solve this."
        assert partial_answer(_continue("What is love?", "a\n")) == "a\n"
        with pytest.raises(ValueError, match=r"q must be in \[0, 1\]; got 1.5"):
            gsm8k_chain_policy(refs, p_error=0.1, q=1.5)
        with pytest.raises(KeyError, match="no reference for question"):
            policy.chain("What is love?", 0)
