"""engines/chain_simulator.py: the exact prefix values agree with rollout shares judged by the real verifier,
sampled chains carry their true first error, rollouts depend on content not request ids, routing by purpose."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

from prefmill.answers import judge, reference_final_answer
from prefmill.config import GenerateConfig, VerifyConfig
from prefmill.engines.base import GenRequest, Sampling
from prefmill.engines.chain_simulator import OPENERS, ChainSimulator, SimulatorConfig
from prefmill.engines.scripted import ScriptedEngine, corrupt_step
from prefmill.tasks.process.consensus import parse_first_error
from prefmill.tasks.process.mc_label import mc_label, step_prefix
from prefmill.tasks.process.steps import steps_of
from prefmill.tasks.sampling.generate import build_messages

NOISY = SimulatorConfig(p_step=0.2, luck=0.25, judge_accuracy=0.7)
ROLLOUTS = 4000


@pytest.fixture(scope="module")
def rows(gsm8k_test) -> list[dict]:
    with (gsm8k_test.parent / "train.jsonl").open() as fh:
        return [json.loads(next(fh)) for _ in range(40)]


@pytest.fixture(scope="module")
def sim(rows) -> ChainSimulator:
    return ChainSimulator({r["question"]: r["answer"] for r in rows}, NOISY)


def _request(question: str, *, rid: str = "r", partial: str | None = None, seed: int | None = 7, n: int = 1,
             purpose: str = "rollout", template: str = "{question}\n\nSolve it step by step.", **inputs) -> GenRequest:
    messages = ({"role": "user", "content": template.replace("{question}", question)},)
    if partial is not None:
        messages += ({"role": "assistant", "content": partial},)
    return GenRequest(rid, messages=messages, sampling=Sampling(n=n, seed=seed), continue_final=partial is not None,
                      purpose=purpose, inputs={"question": messages[0]["content"], **inputs})


def _worded(line: str) -> set[str]:
    """Every way the simulator may write `line`: plain or after an opener."""
    return {line, *(opener + line for opener in OPENERS)}


def _within_3_sigma(hits: int, n: int, p: float) -> bool:
    return abs(hits - n * p) <= 3 * math.sqrt(n * p * (1 - p)) + 1e-9


class TestExactValues:
    @pytest.fixture(scope="class")
    def prefixes(self, rows, sim) -> list[tuple[str, str, str]]:
        """(question, reference, partial): the root, every correct prefix, wrong ones, complete right and wrong."""
        found = []
        for r in [r for r in rows if sum(sim.numbered(r["question"])) >= 3][:2]:
            lines, final = sim.reference(r["question"])
            found += [(r["question"], r["answer"], step_prefix(lines, k) if k else "") for k in range(len(lines))]
            wrong = [corrupt_step(lines[0], 3), *lines[1:2]]
            found += [(r["question"], r["answer"], step_prefix(wrong, len(wrong)))]
            found += [(r["question"], r["answer"], step_prefix([*lines, f"#### {a}"], len(lines) + 1))
                      for a in (final, corrupt_step(final, 2))]
        return found

    def test_every_prefix_share_agrees_with_its_exact_value(self, sim, prefixes):
        engine, verdicts = ScriptedEngine(sim), {}
        requests = [_request(q, rid=f"p{i}", partial=p, n=ROLLOUTS) for i, (q, _, p) in enumerate(prefixes)]
        off = []
        for (question, reference, partial), result in zip(prefixes, engine.generate(requests)):
            answer = reference_final_answer(reference)
            for c in result.completions:  # few distinct texts: judge each once
                if partial + c.text not in verdicts:
                    verdicts[partial + c.text] = judge(partial + c.text, answer)[1]
            hits = sum(verdicts[partial + c.text] for c in result.completions)
            exact = sim.prefix_value(question, partial)
            if not _within_3_sigma(hits, ROLLOUTS, exact):
                off.append((partial[-40:], hits / ROLLOUTS, exact))
        assert len(prefixes) >= 10 and off == []

    def test_the_closed_form(self, sim, rows):
        p, luck = NOISY.p_step, NOISY.luck
        question = next(r["question"] for r in rows if sum(sim.numbered(r["question"])) >= 3)
        lines, final = sim.reference(question)
        for k in range(len(lines) + 1):
            r = sum(sim.numbered(question)[k:])
            assert sim.prefix_value(question, step_prefix(lines, k) if k else "") == pytest.approx(
                (1 - p) ** r + (1 - (1 - p) ** r) * luck)
        assert sim.prefix_value(question, step_prefix([corrupt_step(lines[0], 1)], 1)) == luck
        assert sim.prefix_value(question, step_prefix([*lines, "extra line"], len(lines) + 1)) == luck
        assert sim.prefix_value(question, step_prefix([*lines, f"#### {final}"], len(lines) + 1)) == 1.0
        assert sim.values(question, sim.chain(question, 0).steps)[-1] in (0.0, 1.0)


class TestChains:
    def test_the_true_first_error_is_the_corrupted_step(self, sim, rows):
        errors = 0
        for r in rows:
            lines, final = sim.reference(r["question"])
            for i in range(10):
                chain = sim.chain(r["question"], i)
                got = [s.split("\n")[0] for s in chain.steps]
                assert list(chain.steps) == steps_of(chain.text) and len(got) == len(lines)
                assert sim.first_error(r["question"], chain.steps) == chain.first_error
                e = chain.first_error
                kept = [t for t in range(len(lines)) if t != e]
                assert all(got[t] in _worded(lines[t]) for t in kept)
                if e is None:
                    assert chain.final_correct and chain.text.endswith(f"#### {final}")
                    continue
                errors += 1
                assert sim.numbered(r["question"])[e]
                assert got[e] in set().union(*(_worded(corrupt_step(lines[e], s)) for s in range(1, 10)))
        assert 0 < errors < 400

    def test_fresh_chains_end_right_as_often_as_the_root_value_says(self, sim, rows):
        right, expected, variance = 0, 0.0, 0.0
        for r in rows:
            v = sim.prefix_value(r["question"], "")
            for i in range(50):
                right += sim.chain(r["question"], i).final_correct
                expected, variance = expected + v, variance + v * (1 - v)
        assert abs(right - expected) <= 3 * math.sqrt(variance)

    def test_wording_varies_the_text_not_the_truth(self, sim, rows):
        question = next(r["question"] for r in rows if len(sim.reference(r["question"])[0]) >= 2)
        lines, _ = sim.reference(question)
        assert sim.prefix_value(question, step_prefix(["So " + lines[0]], 1)) == sim.prefix_value(
            question, step_prefix(lines, 1)) > NOISY.luck
        correct = {c.text for i in range(60) if (c := sim.chain(question, i)).first_error is None}
        assert len(correct) > 3
        plain = ChainSimulator({question: dict((r["question"], r["answer"]) for r in rows)[question]},
                               SimulatorConfig(p_step=0.2, luck=0.25, variety=0.0))
        assert len({c.text for i in range(60) if (c := plain.chain(question, i)).first_error is None}) == 1

    def test_a_lucky_chain_has_an_error_and_the_right_answer(self, sim, rows):
        lucky = [c for r in rows for i in range(20) if (c := sim.chain(r["question"], i)).first_error is not None
                 and c.final_correct]
        assert lucky, "luck=0.25 must give wrong chains that end right"


class TestDeterminism:
    def test_same_prefix_and_seed_same_rollouts_whatever_the_request_id(self, sim, rows):
        question, engine = rows[0]["question"], ScriptedEngine(sim)
        partial = step_prefix(sim.reference(question)[0], 1)
        a, b, c = engine.generate([_request(question, rid=rid, partial=partial, seed=seed, n=32)
                                   for rid, seed in (("mc|1", 5), ("omega|9", 5), ("mc|1", 6))])
        assert [x.text for x in a.completions] == [x.text for x in b.completions]
        assert [x.text for x in a.completions] != [x.text for x in c.completions]

    def test_a_new_simulator_gives_the_same_and_a_salt_changes_it(self, sim, rows):
        refs = {r["question"]: r["answer"] for r in rows}
        again, salted = ChainSimulator(refs, NOISY), ChainSimulator(refs, SimulatorConfig(p_step=0.2, luck=0.25, salt="x"))
        texts = lambda s: [s.chain(r["question"], i).text for r in rows for i in range(3)]  # noqa: E731
        assert texts(again) == texts(sim) != texts(salted)


class TestRouting:
    def test_generate_is_chain_i_and_ignores_the_wording(self, sim, rows):
        question = rows[3]["question"]
        for template in ("{question}\n\nSolve it.", "Problem:\n{question}\nThink, then answer."):
            result = ScriptedEngine(sim).generate([_request(question, purpose="generate", n=5, template=template)])[0]
            assert [c.text for c in result.completions] == [sim.chain(question, i).text for i in range(5)]

    def test_rollout_continues_the_partial_turn(self, sim, rows):
        question = rows[1]["question"]
        lines, _ = sim.reference(question)
        text = ScriptedEngine(sim).generate([_request(question, partial=step_prefix(lines, 1))])[0].completions[0].text
        assert steps_of(step_prefix(lines, 1) + text)[0] == lines[0] and "\n#### " in "\n" + text
        complete = step_prefix(list(sim.chain(question, 0).steps), len(sim.chain(question, 0).steps))
        assert sim.rollout(question, complete, seed=1, index=0) == ""

    def test_first_error_judge_parses_and_has_the_configured_accuracy(self, sim, rows):
        """Identical chains with one seed get one answer, so every request has its own seed here."""
        requests, truth = [], []
        for r in rows:
            for i in range(25):
                steps = list(sim.chain(r["question"], i).steps)
                requests.append(_request(r["question"], rid=f"j{len(requests)}", seed=len(requests),
                                         purpose="first_error", steps=steps))
                e = sim.first_error(r["question"], steps)
                truth.append(("none" if e is None else e, len(steps)))
        results = ScriptedEngine(sim).generate(requests)
        parsed = [parse_first_error(res.completions[0].text, n) for res, (_, n) in zip(results, truth)]
        assert all(error is None for _, error in parsed)
        hits = sum(p == t for (p, _), (t, _) in zip(parsed, truth))
        assert _within_3_sigma(hits, len(truth), NOISY.judge_accuracy)

    def test_unsimulated_purposes_and_unknown_questions_raise(self, sim, rows):
        with pytest.raises(ValueError, match="purpose 'judge_pointwise' is not simulated"):
            sim(_request(rows[0]["question"], purpose="judge_pointwise"), 0, None)
        with pytest.raises(ValueError, match="must be a continue_final request"):
            sim(_request(rows[0]["question"], purpose="rollout"), 0, None)
        with pytest.raises(ValueError, match="no known inputs"):
            sim(_request("What is 2 + 2?", purpose="generate"), 0, None)
        with pytest.raises(ValueError, match="luck must be in"):
            SimulatorConfig(luck=1.5)


def test_mc_label_on_the_simulator_reads_the_chains_own_answer_at_the_last_step(sim, rows):
    chains = pl.DataFrame([{"chain_id": f"q{i}-c{j}", "prompt_id": f"q{i}", "prompt": list(build_messages(
        r["question"], cfg=GenerateConfig())), "steps": list(sim.chain(r["question"], j).steps)}
        for i, r in enumerate(rows[:10]) for j in range(2)])
    references = pl.DataFrame({"prompt_id": [f"q{i}" for i in range(10)], "reference": [r["answer"] for r in rows[:10]]})
    out = mc_label(chains, references, engine=ScriptedEngine(sim), rollouts=4, max_tokens=512, temperature=0.8,
                   seed=1, verify_cfg=VerifyConfig())
    for (i, j), values in zip([(i, j) for i in range(10) for j in range(2)], out["values"]):
        assert values[-1] == float(sim.chain(rows[i]["question"], j).final_correct)
        assert all(v in (0.0, 0.25, 0.5, 0.75, 1.0) for v in values)
