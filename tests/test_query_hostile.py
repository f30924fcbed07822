"""prefmill/query.py against hostile queries and damaged stores: read-only, one SELECT, no file access
outside the store, a damaged file or manifest left out with a warning instead of breaking every view."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prefmill.cli import app
from prefmill.errors import StoreError
from prefmill.query import run_query
from tests.test_query import root  # noqa: F401 (the fixture: two datasets, three versions)

PAIRS_FILE = "ds/v0001/data/pairs/train-00000-of-00001.parquet"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("copy (select 1 as x) to '{store}/" + PAIRS_FILE + "' (format parquet)", "only SELECT"),
        ("copy (select 1 as x) to '{outside}' (format parquet)", "only SELECT"),
        ("attach '{store}/x.db' as x", "only SELECT"),
        ("create table t as select 1", "only SELECT"),
        ("install httpfs", "only SELECT"),
        ("set enable_external_access = true", "only SELECT"),
        ("select 1; select 2", "exactly one SELECT"),
        ("select 1; copy (select 1) to '{store}/x.parquet'", "exactly one SELECT"),
        ("select * from read_csv('/etc/passwd')", "Permission"),
        ("select * from read_text('/etc/hostname')", "Permission"),
        ("select * from glob('/etc/*')", "Permission"),
    ],
)
def test_writing_or_escaping_sql_is_refused_and_changes_nothing(root, sql, message, tmp_path_factory):  # noqa: F811
    outside = tmp_path_factory.mktemp("outside") / "hostile.parquet"
    before = {p: _digest(p) for p in root.rglob("*") if p.is_file()}
    with pytest.raises(StoreError, match=message):
        run_query(root, sql.format(store=root, outside=outside))
    after = {p: _digest(p) for p in root.rglob("*") if p.is_file()}
    assert after == before and not outside.exists()


def test_reading_the_store_directly_still_works(root):  # noqa: F811
    rows = run_query(root, f"select count(*) from read_parquet('{root}/{PAIRS_FILE}')").rows()
    assert rows == [(1,)]


def test_a_truncated_file_is_left_out_with_a_warning_and_other_views_work(root):  # noqa: F811
    damaged = root / PAIRS_FILE
    damaged.write_bytes(damaged.read_bytes()[:40])
    skipped: list[str] = []
    pairs = run_query(root, "select dataset, version, count(*) from pairs group by all order by all", skipped=skipped).rows()
    samples = run_query(root, "select count(*) from samples").rows()
    assert pairs == [("ds", "v0002", 2), ("other", "v0001", 1)]
    assert samples == [(6,)]
    assert any(str(damaged) in line and "manifest says" in line for line in skipped)


def test_a_truncated_manifest_leaves_its_version_out(root):  # noqa: F811
    manifest = root / "ds" / "v0002" / "manifest.json"
    manifest.write_text(manifest.read_text()[:30])
    skipped: list[str] = []
    rows = run_query(root, "select dataset, version, count(*) from samples group by all order by all", skipped=skipped).rows()
    assert rows == [("ds", "v0001", 3), ("other", "v0001", 1)]
    assert any("manifest unreadable" in line for line in skipped)


def test_cli_refuses_with_one_clear_error_and_exit_2(root):  # noqa: F811
    result = CliRunner().invoke(app, ["query", f"copy (select 1) to '{root}/{PAIRS_FILE}'", "--store", str(root)])
    assert result.exit_code == 2 and "only SELECT" in result.output and "Traceback" not in result.output
