"""tasks/omegaprm.py: OmegaPRM binary search over a per-question tree, checked against known first errors."""

from __future__ import annotations

import json

import polars as pl
import pytest

from prefmill.config import GenerateConfig, VerifyConfig
from prefmill.engines.scripted import ScriptedEngine, corrupt_step
from prefmill.engines.scripted_chains import gsm8k_chain_policy
from prefmill.tasks.sampling.generate import build_messages
from prefmill.tasks.process.mc_label import step_prefix
from prefmill.tasks.process.balance import balance
from prefmill.tasks.process.omegaprm import OUTPUT_SCHEMA, OmegaConfig, omega_label, search_question
from prefmill.tasks.process.omegaprm_tree import Candidate, Node, q_value, select, u_value
from prefmill.tasks.process.steps import steps_of

VERIFY = VerifyConfig()


@pytest.fixture(scope="module")
def train_rows(gsm8k_test) -> list[dict]:
    with (gsm8k_test.parent / "train.jsonl").open() as fh:
        return [json.loads(next(fh)) for _ in range(30)]


def _frames(rows: list[tuple[str, str, str, list[str]]], answers: dict[str, str]):
    """(chains, references) from (chain_id, prompt_id, question, steps) rows."""
    chains = pl.DataFrame([{"chain_id": c, "prompt_id": p, "prompt": list(build_messages(q, cfg=GenerateConfig())),
                            "steps": s} for c, p, q, s in rows])
    pids = list(dict.fromkeys(p for _, p, _, _ in rows))
    return chains, pl.DataFrame({"prompt_id": pids, "reference": [answers[p] for p in pids]})


@pytest.fixture(scope="module")
def injected(train_rows):
    """30 chains (one per question), ~70% with an error at a known step, q = 0.7 (as test_mc_label)."""
    policy = gsm8k_chain_policy({r["question"]: r["answer"] for r in train_rows}, p_error=0.7, q=0.7)
    rows, truth, answers = [], {}, {}
    for i, r in enumerate(train_rows):
        text, error = policy.chain(r["question"], 0)
        rows.append((f"chain-{i}", f"gsm-{i}", r["question"], steps_of(text)))
        truth[f"chain-{i}"], answers[f"gsm-{i}"] = error, r["answer"]
    return policy, *_frames(rows, answers), truth


def _accuracy(out: pl.DataFrame, truth: dict) -> float:
    return sum(truth[c] == f for c, f in zip(out["chain_id"], out["first_error_step"])) / out.height


class TestSelection:
    CFG = OmegaConfig()

    def test_q_and_u_are_the_papers_formulas(self):
        assert q_value(0.25, 250, self.CFG) == pytest.approx(0.5 ** 0.75 * 0.9 ** 0.5)
        assert q_value(1.0, 0, self.CFG) == 1.0
        assert u_value(3, 16, self.CFG) == pytest.approx(0.125 * 4 / 4)

    def test_picks_the_largest_q_plus_u(self):
        a, b = Candidate("a", ["x", "y"], 1, length=100), Candidate("b", ["u", "v"], 1, length=100)
        nodes = {step_prefix(["x"], 1): Node(n=4, correct=1), step_prefix(["u"], 1): Node(n=4, correct=3)}
        assert select([a, b], nodes, self.CFG) == 1  # same U, higher MC
        nodes = {step_prefix(["x"], 1): Node(n=8, correct=0, visits=1),
                 step_prefix(["u"], 1): Node(n=8, correct=6, visits=600)}
        total = 601  # b has the higher MC but was selected a lot (N = visits): its U shrinks, a's grows
        score_a = q_value(0.0, 100, self.CFG) + u_value(1, total, self.CFG)
        score_b = q_value(0.75, 100, self.CFG) + u_value(600, total, self.CFG)
        assert score_a > score_b and select([a, b], nodes, self.CFG) == 0
        short = Candidate("c", ["x", "z"], 1, length=10)
        assert select([a, short], nodes, self.CFG) == 1  # same state, shorter rollout
        assert select([a, Candidate("d", ["x", "y"], 1, length=100)], nodes, self.CFG) == 0  # first on ties

    def test_bad_config_names_the_field(self):
        with pytest.raises(ValueError, match=r"OmegaConfig.alpha must be in \(0, 1\]; got 1.5"):
            OmegaConfig(alpha=1.5)


class TestBinarySearch:
    @pytest.mark.parametrize("share", [True, False])
    def test_exact_first_error_at_every_step(self, train_rows, share):
        row = train_rows[9]  # eight steps, each showing a number
        policy = gsm8k_chain_policy({row["question"]: row["answer"]}, p_error=0.0, q=1.0)
        steps, final = policy.reference_steps(row["question"])
        chains = []
        for e in [*range(len(steps)), None]:
            wrong = [corrupt_step(s, 3) if i == e else s for i, s in enumerate(steps)]
            text = "\n".join([*wrong, f"#### {int(final) + 3 if e is not None else final}"])
            chains.append((f"e{e}", f"p{e}", row["question"], steps_of(text)))
        frame, refs = _frames(chains, {f"p{e}": row["answer"] for e in [*range(len(steps)), None]})
        engine = ScriptedEngine(policy)

        out = omega_label(frame, refs, engine=engine, cfg=OmegaConfig(share_rollouts=share), verify_cfg=VERIFY)

        assert out.schema == pl.Schema(OUTPUT_SCHEMA)
        assert out["first_error_step"].to_list() == [*range(len(steps)), None]
        for row_out in out.iter_rows(named=True):
            e = row_out["first_error_step"]
            assert row_out["labels"] == ([True] * e + [False] if e is not None else [True] * len(steps))
            assert len(row_out["completions"]) == len(row_out["values"]) == len(row_out["labels"])
            assert row_out["status"] == "labelled" and row_out["method"] == "omegaprm"
        assert out.filter(pl.col("chain_id") == "eNone")["rollouts"].item() == 0  # a right answer needs no search
        assert engine.calls < len(steps) + 3  # a binary search, not a scan

    def test_single_question_search(self, injected):
        policy, chains, refs, truth = injected
        first = chains.head(1)
        tree = search_question(first, engine=ScriptedEngine(policy), cfg=OmegaConfig(),
                               reference=refs["reference"][0], verify_cfg=VERIFY)
        assert tree.finished and tree.inputs[0].first_error == truth["chain-0"]
        assert json.loads(json.dumps(tree.result("x")))["rollouts"] == tree.rollouts


class TestGroundTruth:
    def test_accuracy_on_injected_errors(self, injected):
        policy, chains, refs, truth = injected
        out = omega_label(chains, refs, engine=ScriptedEngine(policy), cfg=OmegaConfig(), verify_cfg=VERIFY)
        assert _accuracy(out, truth) >= 0.95  # measured 1.000
        assert 15 <= sum(e is not None for e in truth.values()) <= 28
        assert out["chain_id"].to_list() == chains["chain_id"].to_list()

    def test_one_engine_call_per_round_for_all_questions(self, injected):
        policy, chains, refs, _ = injected
        alone = []
        for i in range(chains.height):
            engine = ScriptedEngine(policy)
            search_question(chains.slice(i, 1), engine=engine, cfg=OmegaConfig(), reference=refs["reference"][i],
                            verify_cfg=VERIFY)
            alone.append(engine.calls)
        engine = ScriptedEngine(policy)
        omega_label(chains, refs, engine=engine, cfg=OmegaConfig(), verify_cfg=VERIFY)
        assert engine.calls == max(alone) < chains.height
        assert engine.requests_seen > engine.calls  # several questions share a call

    def test_rollouts_stay_within_budget(self, injected):
        policy, chains, refs, _ = injected
        out = omega_label(chains, refs, engine=ScriptedEngine(policy), cfg=OmegaConfig(budget=6), verify_cfg=VERIFY)
        assert out.group_by("prompt_id").agg(pl.col("rollouts").sum())["rollouts"].max() <= 6
        assert "budget" in out["status"].to_list()
        stopped = out.filter(pl.col("status") == "budget")
        assert stopped["labels"].null_count() == stopped.height and stopped["first_error_step"].null_count() == stopped.height

    def test_deterministic(self, injected):
        policy, chains, refs, _ = injected
        run = lambda: omega_label(chains, refs, engine=ScriptedEngine(policy), cfg=OmegaConfig(), verify_cfg=VERIFY)
        assert run().equals(run())


class TestCheckpoints:
    def test_done_questions_are_not_searched_and_each_finish_is_reported_once(self, injected):
        policy, chains, refs, _ = injected
        saved: dict[str, dict] = {}

        def on_done(pid: str, result: dict) -> None:
            assert pid not in saved
            saved[pid] = json.loads(json.dumps(result))  # what a checkpoint file holds

        full = omega_label(chains, refs, engine=ScriptedEngine(policy), cfg=OmegaConfig(), verify_cfg=VERIFY,
                           on_question_done=on_done)
        assert set(saved) == set(chains["prompt_id"])

        half = {pid: saved[pid] for pid in list(saved)[:15]}
        engine, seen, calls = ScriptedEngine(policy), [], []
        generate = engine.generate
        engine.generate = lambda requests: seen.extend(r.request_id for r in requests) or generate(requests)
        resumed = omega_label(chains, refs, engine=engine, cfg=OmegaConfig(), verify_cfg=VERIFY, done=half,
                              on_question_done=lambda pid, _: calls.append(pid))
        assert not any(rid.split("|")[0] in half for rid in seen)
        assert sorted(calls) == sorted(set(saved) - set(half))
        assert resumed.equals(full)

        engine = ScriptedEngine(policy)
        assert omega_label(chains, refs, engine=engine, cfg=OmegaConfig(), verify_cfg=VERIFY, done=saved).equals(full)
        assert engine.calls == 0


class TestBalance:
    def test_equal_positive_and_negative_chains(self, injected):
        policy, chains, refs, _ = injected
        out = balance(omega_label(chains, refs, engine=ScriptedEngine(policy), cfg=OmegaConfig(), verify_cfg=VERIFY),
                      seed=0)
        kept = out.filter("keep")
        assert kept.height > 0 and kept["first_error_step"].null_count() * 2 == kept.height
        assert set(out.filter(~pl.col("keep"))["drop_reason"]) <= {"balance", "unlabelled"}
