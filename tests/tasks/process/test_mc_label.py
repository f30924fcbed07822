"""tasks/mc_label.py: Math-Shepherd MC step labels, checked against chains whose first error is known."""

from __future__ import annotations

import json

import polars as pl
import pytest

from prefmill.config import GenerateConfig, VerifyConfig
from prefmill.engines.base import Completion, GenResult
from prefmill.engines.scripted import ScriptedEngine
from prefmill.engines.scripted_chains import gsm8k_chain_policy
from prefmill.errors import InputError
from prefmill.seeds import rollout_seed
from prefmill.tasks.sampling.generate import build_messages
from prefmill.tasks.process.mc_label import OUTPUT_SCHEMA, build_rollout_requests, mc_label, step_prefix
from prefmill.tasks.process.steps import steps_of

VERIFY = VerifyConfig()
PROMPT = [{"role": "user", "content": "What is (2 + 3) * 4?"}]


def _chains(*rows: tuple[str, str, list[str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "chain_id": [r[0] for r in rows],
            "prompt_id": [r[1] for r in rows],
            "prompt": [PROMPT for _ in rows],
            "steps": [r[2] for r in rows],
        }
    )


REFS = pl.DataFrame({"prompt_id": ["p1"], "reference": ["2 + 3 = 5\n5 * 4 = 20\n#### 20"]})


class TableEngine:
    """Answers request `id` with the texts in `table[id]` (one per sample); ids in `bad` fail."""

    fingerprint = "test:table"

    def __init__(self, table: dict[str, list[str]], bad: frozenset[str] = frozenset()) -> None:
        self.table, self.bad, self.calls, self.requests = table, bad, 0, []

    def generate(self, requests):
        self.calls += 1
        self.requests.extend(requests)
        out = [
            GenResult(r.request_id, error="boom")
            if r.request_id in self.bad
            else GenResult(
                r.request_id,
                tuple(Completion(i, t, len(t.split()), None, "stop") for i, t in enumerate(self.table[r.request_id])),
            )
            for r in requests
        ]
        return out[::-1]  # matched on request id, not position


class TestBuildRolloutRequests:
    def test_one_continuation_per_step_prefix(self):
        chains = _chains(("c1", "p1", ["2 + 3 = 5", "5 * 4 = 20\n#### 20"]), ("c2", "p1", ["x"]))

        requests = build_rollout_requests(chains, rollouts=4, max_tokens=64, temperature=0.7, seed=9)

        # c1's last prefix states its answer: the complete solution is not rolled out; c2 states none
        assert [r.request_id for r in requests] == ["c1|1", "c2|1"]
        assert all(r.continue_final and r.purpose == "rollout" for r in requests)
        assert requests[0].messages == (*PROMPT, {"role": "assistant", "content": "2 + 3 = 5\n"})
        assert requests[1].messages[-1] == {"role": "assistant", "content": "x\n"}
        s = requests[0].sampling
        assert (s.n, s.max_tokens, s.temperature, s.top_p, s.seed, s.logprobs) == (
            4, 64, 0.7, 1.0, rollout_seed(9, requests[0].messages), False,
        )

    def test_seeds_do_not_depend_on_the_batch(self):
        both = build_rollout_requests(_chains(("a", "p1", ["s"]), ("b", "p1", ["s"])), rollouts=2, max_tokens=8, temperature=1, seed=1)
        alone = build_rollout_requests(_chains(("b", "p1", ["s"])), rollouts=2, max_tokens=8, temperature=1, seed=1)
        assert both[1] == alone[0]

    def test_no_steps_no_requests(self):
        assert build_rollout_requests(_chains(("a", "p1", [])), rollouts=2, max_tokens=8, temperature=1, seed=1) == []

    def test_repeated_chain_ids_and_null_steps_are_refused(self):
        with pytest.raises(InputError, match=r"chain_id values repeat: \['a'\]"):
            build_rollout_requests(_chains(("a", "p1", ["s"]), ("a", "p1", ["t"])), rollouts=1, max_tokens=8, temperature=1, seed=1)
        nulls = _chains(("a", "p1", ["s"]), ("b", "p1", ["t"])).with_columns(
            steps=pl.when(pl.col("chain_id") == "b").then(None).otherwise(pl.col("steps"))
        )
        with pytest.raises(InputError, match=r"chains \['b'\] have null steps"):
            build_rollout_requests(nulls, rollouts=1, max_tokens=8, temperature=1, seed=1)


class TestMcLabel:
    def test_soft_and_hard_labels_per_step(self):
        steps = ["2 + 3 = 6", "6 * 4 = 24", "So the answer is 24.\n#### 24"]
        engine = TableEngine({
            "c1|1": ["oops\n#### 20", "#### 24", "then 5 * 4 = 20\n#### 20", "#### 21"],
            "c1|2": ["#### 24", "#### 24", "#### 25", "#### 2"],
        })  # no "c1|3": the last prefix is the complete solution, judged as it is

        out = mc_label(_chains(("c1", "p1", steps)), REFS, engine=engine, rollouts=4, max_tokens=32,
                       temperature=0.8, seed=0, verify_cfg=VERIFY)

        assert out.schema == pl.Schema(OUTPUT_SCHEMA)
        row = out.row(0, named=True)
        assert row["completions"] == steps
        assert row["rollouts_correct"] == [2, 0, 0] and row["rollout_counts"] == [4, 4, 0]
        assert row["values"] == [0.5, 0.0, 0.0]  # the last: the chain's own verdict, its 24 is wrong
        assert row["labels"] == [True, False, False]
        assert row["first_error_step"] == 1
        assert (row["method"], row["engine"], row["failed_steps"], row["prompt_id"]) == ("mc", "test:table", 0, "p1")
        assert row["rollout_tokens"] == (3 + 2 + 8 + 2) + (2 + 2 + 2 + 2)
        assert row["prompt"] == PROMPT
        assert engine.calls == 1

    def test_a_failed_prefix_is_null_and_counted_not_padded(self):
        engine = TableEngine({"c1|1": ["#### 20"], "c1|3": ["#### 7"], "c2|1": ["#### 3"], "c2|2": ["#### 20"]},
                             bad=frozenset({"c1|2", "c2|2"}))

        out = mc_label(_chains(("c1", "p1", ["a", "b", "c"]), ("c2", "p1", ["a", "b"])), REFS, engine=engine,
                       rollouts=1, max_tokens=8, temperature=1, seed=0, verify_cfg=VERIFY)

        assert out.select("chain_id", "labels", "values", "rollout_counts", "failed_steps", "first_error_step").rows() == [
            ("c1", [True, None, False], [1.0, None, 0.0], [1, 0, 1], 1, None),  # unknown before the first False
            ("c2", [False, False], [0.0, None], [1, 0], 1, 0),  # after the first False every label is False
        ]

    def test_chain_without_steps_gets_empty_lists(self):
        out = mc_label(_chains(("c1", "p1", [])), REFS, engine=TableEngine({}), rollouts=2, max_tokens=8,
                       temperature=1, seed=0, verify_cfg=VERIFY)
        assert out.select("labels", "values", "first_error_step", "rollout_tokens").rows() == [([], [], None, 0)]

    def test_missing_reference_is_an_error_not_all_false(self):
        with pytest.raises(InputError, match=r"1 chain\(s\) have no reference for their prompt_id, e.g. \['c9'\]"):
            mc_label(_chains(("c9", "p9", ["a"])), REFS, engine=TableEngine({}), rollouts=1, max_tokens=8,
                     temperature=1, seed=0, verify_cfg=VERIFY)


# --- ground truth: scripted chains with an injected error at a known step -------------------------------


@pytest.fixture(scope="module")
def train_rows(gsm8k_test) -> list[dict]:
    path = gsm8k_test.parent / "train.jsonl"
    with path.open() as fh:
        return [json.loads(next(fh)) for _ in range(30)]


@pytest.fixture(scope="module")
def injected(train_rows):
    """30 chains (one per question), ~70% with an error at a known step, and their references."""
    policy = gsm8k_chain_policy({r["question"]: r["answer"] for r in train_rows}, p_error=0.7, q=0.7)
    rows, truth = [], {}
    for i, r in enumerate(train_rows):
        text, error_step = policy.chain(r["question"], 0)
        chain_id = f"chain-{i}"
        rows.append({"chain_id": chain_id, "prompt_id": f"gsm-{i}",
                     "prompt": list(build_messages(r["question"], cfg=GenerateConfig())), "steps": steps_of(text)})
        truth[chain_id] = error_step
    references = pl.DataFrame({"prompt_id": [f"gsm-{i}" for i in range(len(train_rows))],
                               "reference": [r["answer"] for r in train_rows]})
    return policy, pl.DataFrame(rows), references, truth


def _label(injected, rollouts: int):
    policy, chains, references, truth = injected
    engine = ScriptedEngine(policy, name="chain")
    out = mc_label(chains, references, engine=engine, rollouts=rollouts, max_tokens=512, temperature=0.8,
                   seed=1234, verify_cfg=VERIFY)
    hits = sum(truth[c] == f for c, f in zip(out["chain_id"], out["first_error_step"]))
    return out, engine, hits / out.height


class TestGroundTruth:
    def test_first_false_label_is_the_injected_error(self, injected):
        _, chains, _, truth = injected
        out, engine, accuracy = _label(injected, rollouts=8)

        assert accuracy >= 0.95, f"first-error accuracy {accuracy:.3f} over 30 chains with 8 rollouts"  # measured 1.000
        assert 15 <= sum(e is not None for e in truth.values()) <= 28  # both kinds of chain are there
        assert engine.calls == 1
        assert engine.requests_seen == sum(len(s) - 1 for s in chains["steps"])  # none from the complete solution
        assert out["chain_id"].to_list() == chains["chain_id"].to_list()
        assert out["completions"].to_list() == chains["steps"].to_list()
        for row in out.iter_rows(named=True):
            assert row["rollout_counts"] == [8] * (len(row["completions"]) - 1) + [0]
            assert all(0.0 <= v <= 1.0 for v in row["values"])
            assert row["labels"] == [v > 0 for v in row["values"]]
            assert row["rollouts_correct"][:-1] == [round(v * 8) for v in row["values"][:-1]]
            error = truth[row["chain_id"]]
            if error is not None:  # a prefix holding the error never reaches the right answer
                assert row["values"][error:] == [0.0] * (len(row["completions"]) - error)
        assert out["rollout_tokens"].sum() > 0 and out["failed_steps"].sum() == 0

    def test_request_ids_are_chain_and_prefix_length(self, injected):
        _, chains, _, _ = injected
        requests = build_rollout_requests(chains, rollouts=8, max_tokens=512, temperature=0.8, seed=1234)
        first = chains.row(0, named=True)
        assert [r.request_id for r in requests[: len(first["steps"]) - 1]] == [
            f"chain-0|{k}" for k in range(1, len(first["steps"]))
        ]
        assert requests[0].messages[-1]["content"] == step_prefix(first["steps"], 1)

    def test_more_rollouts_find_the_error_more_often(self, injected):
        # One rollout often misses that a correct prefix can succeed (q = 0.7): the estimate needs k.
        assert _label(injected, rollouts=1)[2] < _label(injected, rollouts=8)[2]

    def test_deterministic(self, injected):
        assert _label(injected, rollouts=4)[0].equals(_label(injected, rollouts=4)[0])
