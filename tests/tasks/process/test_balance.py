"""Balancing runs after the consensus filter, and the consensus judge sees whole solutions."""

from __future__ import annotations

import polars as pl

from prefmill.config import JudgeConfig
from prefmill.tasks.process.balance import balance
from prefmill.tasks.process.consensus import consensus_filter

PROMPT = [{"role": "user", "content": "Q?"}]


def _rows(spec):
    """(chain_id, labels, first_error_step, keep, drop_reason) -> a labelled table after consensus."""
    return pl.DataFrame(
        [{"chain_id": c, "prompt_id": "p", "prompt": PROMPT, "completions": [f"s{i}" for i in range(len(l))],
          "labels": l, "first_error_step": e, "keep": k, "drop_reason": r} for c, l, e, k, r in spec]
    )


def test_balance_keeps_equal_sides_and_never_revives_a_consensus_drop():
    rows = _rows([
        ("a", [True, False], 1, True, None), ("b", [False], 0, True, None), ("c", [True, True], None, True, None),
        ("d", [True], None, False, "judge_disagrees"), ("e", [True, None], None, True, None),
        ("f", [True, True], None, False, "judge_unparsable"),
    ])
    out = balance(rows, seed=0)
    kept = out.filter("keep")
    assert kept.height == 2 and kept["first_error_step"].null_count() == 1  # one of a/b, and c
    reasons = dict(zip(out["chain_id"], out["drop_reason"]))
    assert reasons["d"] == "judge_disagrees" and reasons["f"] == "judge_unparsable" and reasons["e"] == "unlabelled"
    assert sorted(str(r) for c, r in reasons.items() if c in "ab") == ["None", "balance"]


def test_the_consensus_judge_sees_the_whole_solution_of_a_cut_chain():
    """OmegaPRM publishes a chain cut after its first error; the judge must see its final answer too."""
    seen = []

    class Judge:
        fingerprint = "judge"

        def generate(self, requests):
            from prefmill.engines.base import Completion, GenResult

            seen.extend(r.inputs["steps"] for r in requests)
            return [GenResult(r.request_id, (Completion(0, "ok\nFirst error: 2", 3, None, "stop"),)) for r in requests]

    labelled = _rows([("a", [True, False], 1, True, None)]).drop("keep", "drop_reason")
    chains = pl.DataFrame({"chain_id": ["a"], "steps": [["s0", "s1", "s2\n#### 7"]]})
    out = consensus_filter(labelled, chains, cfg=JudgeConfig(constrained=False), engine=Judge())
    assert seen == [["s0", "s1", "s2\n#### 7"]]
    assert out.row(0, named=True)["judge_first_error"] == 1 and out["keep"].to_list() == [True]
