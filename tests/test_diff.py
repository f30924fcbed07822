"""`prefmill diff`: rows added, removed and changed per config, matched by id, and the stats that moved."""

from __future__ import annotations

import pyarrow as pa
from typer.testing import CliRunner

from prefmill.cli import app
from prefmill.diff import diff_versions
from prefmill.store import publish_version

runner = CliRunner()


def _pairs(rows: dict[str, float]) -> pa.Table:
    return pa.table({"pair_id": list(rows), "margin": list(rows.values()), "messages": [[1, 2]] * len(rows)})


def _two_versions(store):
    old = {"samples": pa.table({"sample_id": ["s1", "s2"], "completion": ["a", "b"]}),
           "pairs": _pairs({"p1": 0.5, "p2": 0.7, "p3": 1.0}),
           "votes": pa.table({"prompt_id": ["q1"], "share": [0.5]})}
    new = {"samples": pa.table({"sample_id": ["s1", "s2"], "completion": ["a", "b"]}),
           "pairs": _pairs({"p1": 0.5, "p2": 0.9, "p4": 1.0, "p5": 0.2}),  # p2 changed, p3 gone, p4 p5 new
           "steps": pa.table({"chain_id": ["c1"], "label": [True]})}
    publish_version(store, "d", old, config={"k": 1}, info={"stats": {"pairs": {"pairs": 3, "mean_margin": 0.73}, "samples": 2}})
    publish_version(store, "d", new, config={"k": 2}, info={"stats": {"pairs": {"pairs": 4, "mean_margin": 0.65}, "samples": 2}})


def test_counts_per_config_and_the_stats_that_moved(tmp_path):
    _two_versions(tmp_path)
    configs, stats = diff_versions(tmp_path, "d", "v0001", "2")
    got = {c.config: (c.key, c.old_rows, c.new_rows, c.added, c.removed, c.changed, c.unchanged) for c in configs}
    assert got == {
        "pairs": ("pair_id", 3, 4, 2, 1, 1, 1),
        "samples": ("sample_id", 2, 2, 0, 0, 0, 2),
        "steps": ("chain_id", 0, 1, 1, 0, 0, 0),  # a config only the new version has
        "votes": ("prompt_id", 1, 0, 0, 1, 0, 0),
    }
    assert [(s.stat, s.old, s.new, s.delta) for s in stats] == [
        ("pairs.mean_margin", 0.73, 0.65, 0.65 - 0.73), ("pairs.pairs", 3, 4, 1)]


def test_repeated_ids_are_matched_by_occurrence(tmp_path):
    publish_version(tmp_path, "d", {"pairs": _pairs({"p": 0.1}).take([0, 0])}, config={"k": 1})
    publish_version(tmp_path, "d", {"pairs": _pairs({"p": 0.1}).take([0, 0, 0])}, config={"k": 2})
    (pairs,) = diff_versions(tmp_path, "d", "1", "2")[0]
    assert (pairs.added, pairs.removed, pairs.changed) == (1, 0, 0)


def test_cli_prints_both_tables_and_a_bad_version_is_one_error(tmp_path):
    _two_versions(tmp_path)
    ok = runner.invoke(app, ["diff", "d", "1", "2", "--store", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert "pairs" in ok.output and "stats that differ" in ok.output and "mean_margin" in ok.output
    bad = runner.invoke(app, ["diff", "d", "1", "v0009", "--store", str(tmp_path)])
    assert bad.exit_code == 2 and "no version 'v0009'" in bad.output and "Traceback" not in bad.output


def test_a_damaged_file_is_reported_not_compared(tmp_path):
    _two_versions(tmp_path)
    target = next((tmp_path / "d" / "v0002" / "data" / "pairs").glob("*.parquet"))
    target.write_bytes(target.read_bytes()[:-10])
    bad = runner.invoke(app, ["diff", "d", "1", "2", "--store", str(tmp_path)])
    assert bad.exit_code == 2 and "bytes" in bad.output, bad.output


def test_a_column_whose_type_changed_does_not_make_every_row_changed(tmp_path):
    rows = {"pair_id": ["a", "b"], "rank": [1, 2]}
    publish_version(tmp_path, "d", {"pairs": pa.table(rows, schema=pa.schema([("pair_id", pa.string()), ("rank", pa.int32())]))},
                    config={"k": 1})
    publish_version(tmp_path, "d", {"pairs": pa.table(rows, schema=pa.schema([("pair_id", pa.string()), ("rank", pa.int64())]))},
                    config={"k": 2})
    (pairs,) = diff_versions(tmp_path, "d", "1", "2")[0]
    assert (pairs.key, pairs.changed, pairs.unchanged) == ("pair_id", 0, 2)
