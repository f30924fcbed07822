"""Requests carry their purpose and inputs: the scripted engine answers from those, never from a
prompt's wording. Reword every judge, consensus and RISE template (leaving out even the question) and
the scripted recipes publish the same tables as before (tests/flows/test_golden.py)."""

from __future__ import annotations

import pytest

from prefmill.tasks.preference import judge
from prefmill.tasks.process import consensus
from prefmill.tasks.rise import editors
from tests.flows.test_golden import CASES, GOLDEN, run_case, version_hash

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def reworded(monkeypatch):
    monkeypatch.setattr(judge, "build_pointwise_prompt", lambda question, solution, *, rubric, rationale: "Rate it.")
    monkeypatch.setattr(judge, "build_pairwise_prompt", lambda question, first, second, *, rubric, rationale: "Which one?")
    monkeypatch.setattr(consensus, "build_first_error_prompt", lambda question, steps, *, rationale: "Where does it go wrong?")
    monkeypatch.setattr(editors, "edit_prompt", lambda question, text, steps, k, instruction: f"Break it ({instruction}).")


@pytest.mark.parametrize("name", sorted(CASES))
def test_reworded_templates_give_the_golden_tables(name, reworded, tmp_path, gsm8k_test):
    folder = run_case(name, tmp_path / "store", gsm8k_test.parent / "train.jsonl")
    assert version_hash(folder) == GOLDEN[name]


def test_rewording_reaches_the_engine(reworded):
    """The templates above are what the engine is sent (so the test above is not vacuous)."""
    import polars as pl

    from prefmill.config import JudgeConfig

    samples = pl.DataFrame({"sample_id": ["s"], "prompt": [[{"role": "user", "content": "Q?"}]], "completion": ["#### 1"]})
    (request,) = judge.build_pointwise_requests(samples, cfg=JudgeConfig())
    assert request.messages[0]["content"] == "Rate it." and request.purpose == "judge_pointwise"
    assert request.inputs == {"question": "Q?", "solution": "#### 1"}
