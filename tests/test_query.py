"""prefmill/query.py: DuckDB views over every published version, with `dataset` and `version` columns."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from prefmill.errors import StoreError
from prefmill.query import config_files, run_query
from prefmill.schemas.tables import PAIRS, VERIFIED
from prefmill.schemas.validate import conform
from prefmill.store import publish_version

MSG = [{"role": "user", "content": "q"}]


def _samples(prompt_ids: list[str], *, correct: list[bool] | None = None) -> pa.Table:
    n = len(prompt_ids)
    correct = correct or [True] * n
    return conform(
        pa.table(
            {
                "sample_id": [f"{p}-{i}" for i, p in enumerate(prompt_ids)], "prompt_id": prompt_ids,
                "sample_index": list(range(n)), "prompt": [MSG] * n, "completion": ["#### 1"] * n,
                "num_tokens": [3] * n, "mean_logprob": [-0.5] * n, "finish_reason": ["stop"] * n, "seed": [1] * n,
                "engine": ["scripted:t"] * n, "error": [None] * n, "reference_answer": ["1"] * n,
                "extracted": ["1"] * n, "correct": correct, "verify_error": [None] * n,
            }
        ),
        VERIFIED,
        where="samples",
    )


def _pairs(prompt_ids: list[str]) -> pa.Table:
    n = len(prompt_ids)
    return conform(
        pa.table(
            {
                "prompt_id": prompt_ids, "prompt": [MSG] * n,
                "chosen": [[{"role": "assistant", "content": "#### 1"}]] * n,
                "rejected": [[{"role": "assistant", "content": "#### 2"}]] * n,
                "strategy": ["verified_vs_incorrect"] * n, "chosen_source": ["sample"] * n,
                "chosen_sample_id": [f"{p}-0" for p in prompt_ids], "rejected_sample_id": [f"{p}-1" for p in prompt_ids],
                "chosen_answer": ["1"] * n, "rejected_answer": ["2"] * n, "reference_answer": ["1"] * n,
                "chosen_logprob": [-0.1] * n, "rejected_logprob": [-0.2] * n,
                "pair_id": [f"{p}-0~{p}-1" for p in prompt_ids], "chosen_engine": ["scripted:t"] * n,
                "rejected_engine": ["scripted:t"] * n, "chosen_score": [1.0] * n, "rejected_score": [0.0] * n,
                "margin": [1.0] * n, "curriculum_rank": list(range(n)), "weight": [1.0] * n,
            }
        ),
        PAIRS,
        where="pairs",
        fill_nullable=True,
    )


@pytest.fixture
def root(tmp_path):
    publish_version(tmp_path, "ds", {"samples": _samples(["a", "a", "b"]), "pairs": _pairs(["a"])}, config={"v": 1})
    publish_version(tmp_path, "ds", {"samples": _samples(["c", "d"], correct=[True, False]), "pairs": _pairs(["c", "d"])},
                    config={"v": 2})
    publish_version(tmp_path, "other", {"samples": _samples(["z"]), "pairs": _pairs(["z"])}, config={"v": 3})
    return tmp_path


class TestRunQuery:
    def test_counts_per_version(self, root):
        rows = run_query(root, "select version, count(*) from samples where dataset = 'ds' group by version order by version")
        assert rows.rows() == [("v0001", 3), ("v0002", 2)]

    def test_dataset_column(self, root):
        rows = run_query(root, "select dataset, version, count(*) from pairs group by all order by all").rows()
        assert rows == [("ds", "v0001", 1), ("ds", "v0002", 2), ("other", "v0001", 1)]

    def test_table_columns_follow_dataset_and_version(self, root):
        columns = run_query(root, "select * from samples limit 0").columns
        assert columns == ["dataset", "version"] + VERIFIED.names

    def test_restricted_to_one_dataset(self, root):
        rows = run_query(root, "select dataset, count(*) from samples group by dataset", dataset="other").rows()
        assert rows == [("other", 1)]

    def test_values_round_trip(self, root):
        rows = run_query(
            root, "select sample_id, correct, prompt[1].content from samples where version = 'v0002' and dataset = 'ds' "
            "order by sample_id"
        ).rows()
        assert rows == [("c-0", True, "q"), ("d-1", False, "q")]

    def test_unknown_view_lists_the_views(self, root):
        with pytest.raises(StoreError) as info:
            run_query(root, "select * from nope")
        assert info.value.message.startswith("query failed: Catalog Error: Table with name nope does not exist!")
        prefix, _, views = info.value.hint.partition(": ")
        assert prefix == f"views over {root}"
        assert sorted(views.split(", ")) == ["pairs", "samples"]

    def test_empty_store_says_there_are_no_versions(self, tmp_path):
        with pytest.raises(StoreError) as info:
            run_query(tmp_path, "select * from samples")
        assert info.value.hint == f"views over {tmp_path}: none (no published versions yet)"

    def test_syntax_error(self, root):
        with pytest.raises(StoreError, match=r"^query failed: Parser Error: syntax error"):
            run_query(root, "selec 1")

    def test_execution_error_is_a_store_error(self, root):
        with pytest.raises(StoreError, match="query failed: Conversion Error"):
            run_query(root, "select cast('x' || prompt_id as int) from samples").rows()

    def test_staging_folders_are_never_read(self, root):
        staging = root / "ds" / ".staging-abc123" / "data" / "samples"
        staging.mkdir(parents=True)
        pq.write_table(_samples(["s1", "s2", "s3", "s4"]), staging / "train-00000-of-00001.parquet")

        rows = run_query(root, "select dataset, version, count(*) from samples group by all order by all").rows()

        assert rows == [("ds", "v0001", 3), ("ds", "v0002", 2), ("other", "v0001", 1)]
    def test_only_published_versions_are_read(self, root):
        stray = root / "ds" / "v0002.bak" / "data" / "samples"
        stray.mkdir(parents=True)
        pq.write_table(_samples(["s1"]), stray / "train-00000-of-00001.parquet")

        rows = run_query(root, "select dataset, version, count(*) from samples group by all order by all").rows()

        assert rows == [("ds", "v0001", 3), ("ds", "v0002", 2), ("other", "v0001", 1)]


class TestConfigFiles:
    def test_lists_published_version_files_in_order(self, root):
        files = config_files(root, "samples", dataset="ds")

        assert files == [
            str(root / "ds" / v / "data" / "samples" / "train-00000-of-00001.parquet") for v in ("v0001", "v0002")
        ]
