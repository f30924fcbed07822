"""Golden outputs: the scripted recipes, with fixed seeds, publish exactly these tables.

A refactor must not change what prefmill writes. Each case runs a real flow on the scripted engine
and hashes every published table by content (rows as canonical JSON, plus the schema), not by file
bytes, so a Parquet writer's metadata cannot move the hash. A commit that changes a stage's output on
purpose updates the hash here and says why.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from prefmill.config import validate_config
from prefmill.flows.preference import preference
from prefmill.flows.process import process

pytestmark = pytest.mark.usefixtures("prefect_server")

_BASE = {"engine": {"kind": "scripted", "p_error": 0.4}, "generate": {"n": 4, "chunk_size": 5, "seed": 7}}

CASES = {
    "preference-rise": {
        "source": {"limit": 10},
        "judge": {"pointwise": True, "pairwise": True, "samples": 2},
        "rise": {"enabled": True, "editor": "llm", "use_reference": True, "edits_per_solution": 2, "ratio": None},
    },
    "preference-ranked": {
        "source": {"limit": 10, "offset": 20},
        "judge": {"pointwise": True, "pairwise": True},
        "pairs": {"strategy": "all_ranked", "max_pairs_per_prompt": 6},
        "filters": {"require_swap_consistent": True},
        "rise": {"enabled": True, "editor": "rules"},
    },
    "process-mc-consensus": {
        "flow": "process",
        "source": {"limit": 8},
        "generate": {"n": 2},
        "process": {"method": "mc", "rollouts": 4, "chains": "both", "consensus": True},
    },
    "process-omegaprm": {
        "flow": "process",
        "source": {"limit": 8, "offset": 8},
        "generate": {"n": 3},
        "process": {"method": "omegaprm", "rollouts": 4, "budget": 40, "chains": "samples"},
    },
}

# Changed once on purpose: the scripted engine now draws a sample from what is asked (the request's
# inputs and the partial answer) and the sample's own seed (seed + index, vLLM's rule), not from the request id, and rollouts are seeded by
# their prefix; every scripted text changed with it.
GOLDEN = {
    # The judges answer with the verdict line alone by default (judge.rationale: false); with
    # `judge.rationale: true` these two give their earlier hashes, ae1acec104e0303d and acde0ae3fa626e14.
    "preference-rise": "399dfdce0db2402a",  # + rise_steps, SCIR/CREAM columns, sides_changed_share
    "preference-ranked": "07d70459050e9148",  # + rise_steps, SCIR/CREAM columns
    "process-mc-consensus": "f078fe6c70bbcab8",  # MC: monotone labels, witnesses, no rollout of a complete solution; step pairs from correct prefixes
    "process-omegaprm": "9387b5d9676e7893",  # OmegaPRM: Q+U tree search, unbiased values from fresh rollouts
}


def table_hash(path: Path) -> str:
    """Content hash of one Parquet file: its schema and its rows as canonical JSON."""
    table = pq.read_table(path)
    h = hashlib.sha256(str(table.schema.remove_metadata()).encode())
    for row in table.to_pylist():
        h.update(json.dumps(row, sort_keys=True, default=str).encode())
    return h.hexdigest()


def version_hash(folder: Path) -> str:
    files = sorted(folder.glob("data/*/*.parquet"))
    parts = [f"{f.relative_to(folder)}={table_hash(f)}" for f in files]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def run_case(name: str, store: Path, train: Path) -> Path:
    spec = json.loads(json.dumps(CASES[name]))
    recipe = {"dataset": f"golden-{name}", **_BASE, **spec}
    recipe["generate"] = _BASE["generate"] | spec.get("generate", {})
    recipe["source"] = {"path": str(train)} | spec["source"]
    config = validate_config(recipe).model_dump(mode="json")
    flow = process if recipe.get("flow") == "process" else preference
    result = flow(config=config, store=str(store))
    return Path(result["path"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_scripted_recipe_publishes_the_golden_tables(name, tmp_path, gsm8k_test):
    folder = run_case(name, tmp_path / "store", gsm8k_test.parent / "train.jsonl")
    assert version_hash(folder) == GOLDEN[name], f"{name}: published tables changed"
