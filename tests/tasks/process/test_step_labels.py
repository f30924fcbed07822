"""tasks/process/step_labels.py and MC (Math-Shepherd) labels measured on the ground-truth simulator:
hard labels monotone, a verified-correct chain a witness for every prefix, no rollout from a complete
solution, values unbiased with their n, rollouts shared with other methods through the cache."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from prefmill.config import GenerateConfig, VerifyConfig
from prefmill.engines.cached import CachingEngine, RolloutCache
from prefmill.engines.chain_simulator import ChainSimulator, SimulatorConfig
from prefmill.engines.scripted import ScriptedEngine
from prefmill.sources import read_table
from prefmill.tasks.process.mc_label import mc_label, step_prefix
from prefmill.tasks.process.step_labels import first_error, is_complete, monotone_labels
from prefmill.tasks.process.steps import steps_of
from prefmill.tasks.sampling.generate import build_messages
from tests.conftest import GSM8K

VERIFY = VerifyConfig()
K = 8
labels_lists = st.lists(st.one_of(st.none(), st.booleans()), max_size=12)


class TestRules:
    @given(labels_lists, st.booleans())
    def test_monotone_and_first_error_consistent(self, labels, correct):
        out = monotone_labels(labels, chain_correct=correct)
        assert len(out) == len(labels)
        assert not any(a is False and b is True for i, a in enumerate(out) for b in out[i + 1 :])  # never False then True
        first_false = next((i for i, x in enumerate(labels) if x is False), len(labels))
        if not correct:
            assert out[:first_false] == labels[:first_false]  # up to the first False, as measured
        if correct:
            assert out == [True] * len(labels) and first_error(out) is None
        e = first_error(out)
        if e is not None:
            assert out[e] is False and all(x is True for x in out[:e])

    def test_after_the_first_false_every_label_is_false(self):
        assert monotone_labels([True, None, False, True], chain_correct=False) == [True, None, False, False]
        assert monotone_labels([True, False, True], chain_correct=True) == [True, True, True]

    def test_complete_means_an_explicit_final_answer(self):
        assert is_complete(["a = 2", "so 4\n#### 4"]) and is_complete(["The answer is 4."])
        assert not is_complete(["a = 2", "so b = 4"]) and not is_complete([])


@pytest.fixture(scope="module")
def simulated():
    rows = read_table(GSM8K / "train.jsonl").head(60).to_dicts()
    sim = ChainSimulator({r["question"]: r["answer"] for r in rows}, SimulatorConfig(p_step=0.15, luck=0.25))
    chains, truth = [], {}
    for i, r in enumerate(rows):
        for j in range(4):
            chain = sim.chain(r["question"], j)
            cid = f"c{i}-{j}"
            chains.append({"chain_id": cid, "prompt_id": f"p{i}", "steps": list(steps_of(chain.text)),
                           "prompt": list(build_messages(r["question"], cfg=GenerateConfig()))})
            truth[cid] = (r["question"], chain)
    references = pl.DataFrame({"prompt_id": [f"p{i}" for i in range(len(rows))], "reference": [r["answer"] for r in rows]})
    return sim, pl.DataFrame(chains), references, truth


def _mc(simulated, engine=None, rollouts=K):
    sim, chains, references, _ = simulated
    engine = engine or ScriptedEngine(sim, name="sim")
    return mc_label(chains, references, engine=engine, rollouts=rollouts, max_tokens=256, temperature=0.8,
                    seed=3, verify_cfg=VERIFY), engine


class TestMcOnTheSimulator:
    def test_labels_are_monotone_and_first_errors_consistent(self, simulated):
        out, _ = _mc(simulated, rollouts=1)  # k = 1: plenty of sampling misses to be disproved
        for row in out.iter_rows(named=True):
            labels = row["labels"]
            assert not any(a is False and b is True for i, a in enumerate(labels) for b in labels[i + 1 :]), row["chain_id"]
            e = row["first_error_step"]
            assert (e is None) == all(labels) and (e is None or labels[e] is False)

    def test_a_verified_correct_chain_has_no_first_error(self, simulated):
        _, _, _, truth = simulated
        out, _ = _mc(simulated, rollouts=1)
        right = [r for r in out.iter_rows(named=True) if truth[r["chain_id"]][1].final_correct]
        lucky = [r for r in right if truth[r["chain_id"]][1].first_error is not None]
        assert right and lucky  # correct chains, some of them right by luck after a wrong step
        assert all(r["first_error_step"] is None and all(r["labels"]) for r in right)

    def test_no_rollout_from_the_complete_solution(self, simulated):
        _, chains, _, truth = simulated
        out, engine = _mc(simulated)
        assert engine.requests_seen == sum(len(s) - 1 for s in chains["steps"])
        for row in out.iter_rows(named=True):
            assert row["rollout_counts"][-1] == 0
            assert row["values"][-1] == float(truth[row["chain_id"]][1].final_correct)

    def test_values_are_unbiased_shares_of_k_fresh_rollouts(self, simulated):
        sim, _, _, truth = simulated
        out, _ = _mc(simulated)
        errors = []
        for row in out.iter_rows(named=True):
            question = truth[row["chain_id"]][0]
            for j, (value, n) in enumerate(zip(row["values"][:-1], row["rollout_counts"][:-1])):
                assert n == K and 0.0 <= value <= 1.0
                errors.append(value - sim.prefix_value(question, step_prefix(row["completions"], j + 1)))
        assert len(errors) > 300
        assert abs(sum(errors) / len(errors)) < 0.03  # unbiased
        assert sum(abs(e) for e in errors) / len(errors) < 0.15  # MAE at k = 8 (binomial noise)

    def test_mc_at_4_serves_every_rollout_of_mc_at_8_from_the_cache(self, simulated, tmp_path):
        sim, *_ = simulated
        engine = CachingEngine(ScriptedEngine(sim, name="sim"), RolloutCache(tmp_path))
        _mc(simulated, engine=engine, rollouts=8)
        misses = engine.misses
        four, _ = _mc(simulated, engine=engine, rollouts=4)  # other k, same prefixes and seeds
        assert engine.misses == misses and engine.hits == misses // 2


def test_omegaprm_after_mc_draws_its_rollouts_from_mcs_through_the_cache(simulated, tmp_path):
    """Seeds come from the prefix, never from request ids: OmegaPRM's checks of a prefix MC already
    rolled out (same sampling) are served by the rollout cache."""
    from prefmill.tasks.process.omegaprm import OmegaConfig, omega_label

    sim, chains, references, _ = simulated
    engine = CachingEngine(ScriptedEngine(sim, name="sim"), RolloutCache(tmp_path))
    _mc(simulated, engine=engine, rollouts=K)
    mc_misses = engine.misses
    omega_label(chains, references, engine=engine,
                cfg=OmegaConfig(rollouts_per_check=K, max_tokens=256, temperature=0.8, seed=3), verify_cfg=VERIFY)
    omega_hits, omega_misses = engine.hits, engine.misses - mc_misses
    assert omega_hits > 0 and omega_hits >= 0.9 * (omega_hits + omega_misses)
