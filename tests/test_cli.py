"""The command line: errors are one line naming file/row/field, exit code 2, nothing written."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from prefmill.cli import app
from prefmill.store import publish_version
from tests.conftest import ROOT

DEMO = ROOT / "configs" / "demo.yaml"
runner = CliRunner()


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "versions", "show", "diff", "query", "verify", "deploy", "publish", "card", "export", "prepare-model"):
        assert command in result.output


def test_bad_recipe_names_file_and_every_bad_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEMO.read_text().replace("  n: 4", "  n: 0").replace("rejected: most_confident", "rejectd: x"))
    store = tmp_path / "store"

    result = runner.invoke(app, ["run", str(bad), "--store", str(store)])

    assert result.exit_code == 2
    assert str(bad) in result.output
    assert "generate.n" in result.output and "(got 0)" in result.output
    assert "pairs.rejectd" in result.output
    assert not store.exists()


def test_bad_override_is_refused(tmp_path):
    result = runner.invoke(app, ["run", str(DEMO), "--store", str(tmp_path), "--set", "generate.n"])
    assert result.exit_code == 2 and "expected KEY=VALUE" in result.output


def test_bad_prompt_row_fails_before_prefect_starts_and_writes_nothing(tmp_path):
    source = tmp_path / "prompts.jsonl"
    source.write_text('{"question": "What is 1+1?", "answer": "2"}\n{"question": "  ", "answer": "3"}\n')
    store = tmp_path / "store"

    result = runner.invoke(
        app, ["run", str(DEMO), "--store", str(store), "--set", f"source.path={source}"]
    )

    assert result.exit_code == 2
    assert result.output.strip() == f"error: {source}: row 2, field 'question': empty or missing"
    assert not store.exists()


def _publish(store, dataset="d"):
    from prefmill.schemas.tables import PAIRS, VERIFIED

    return publish_version(
        store, dataset, {"samples": VERIFIED.empty_table(), "pairs": PAIRS.empty_table()},
        config={"k": 1}, info={"engine": "e", "stats": {"samples": {"samples": 0}, "pairs": {"pairs": 0}}},
    )


def test_versions_and_show(tmp_path):
    _publish(tmp_path)

    listed = runner.invoke(app, ["versions", "d", "--store", str(tmp_path)])
    shown = runner.invoke(app, ["show", "d", "1", "--store", str(tmp_path)])
    missing = runner.invoke(app, ["show", "d", "v0009", "--store", str(tmp_path)])

    assert listed.exit_code == 0 and "v0001" in listed.output
    assert shown.exit_code == 0 and json.loads(shown.output)["version"] == "v0001"
    assert missing.exit_code == 2 and "no version 'v0009'" in missing.output


def test_query_formats_and_unknown_view(tmp_path):
    _publish(tmp_path)

    as_json = runner.invoke(app, ["query", "select count(*) as n from pairs", "--store", str(tmp_path), "-f", "json"])
    as_csv = runner.invoke(app, ["query", "select count(*) as n from samples", "--store", str(tmp_path), "-f", "csv"])
    unknown = runner.invoke(app, ["query", "select * from steps", "--store", str(tmp_path)])

    assert json.loads(as_json.output) == [{"n": 0}]
    assert as_csv.output == "n\n0\n"
    assert unknown.exit_code == 2 and "samples" in unknown.output and "pairs" in unknown.output


def test_verify_command_writes_rows_with_verdicts(tmp_path):
    rows = [
        {"output": "She makes 9 * 2 = $18.\n#### 18", "answer": "Janet sells 9 eggs.\n#### 18"},
        {"output": "The answer is 17.", "answer": 18},
        {"output": "", "answer": "18"},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"

    result = runner.invoke(
        app, ["verify", str(src), "--completion-field", "output", "--reference-field", "answer", "--out", str(out)]
    )

    assert result.exit_code == 0, result.output
    checked = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["correct"] for r in checked] == [True, False, False]
    assert [r["extracted"] for r in checked] == ["18", "17", None]
    assert [r["reference_answer"] for r in checked] == ["18", "18", "18"]
    assert "1 of 3 correct; 1 without a verdict (empty_completion=1)" in result.output


def test_switching_strategy_and_filters_from_the_command_line_names_bad_keys(tmp_path):
    bad_strategy = runner.invoke(app, ["run", str(DEMO), "--store", str(tmp_path), "--set", "pairs.strategy=bestworst"])
    bad_filter = runner.invoke(app, ["run", str(DEMO), "--store", str(tmp_path), "--set", "filters.scir=0.7"])

    assert bad_strategy.exit_code == 2 and "pairs.strategy" in bad_strategy.output
    assert "'best_worst'" in bad_strategy.output and "'bestworst'" in bad_strategy.output
    assert bad_filter.exit_code == 2 and "filters.scir: Extra inputs are not permitted" in bad_filter.output


def test_every_shipped_recipe_validates():
    from prefmill.config import load_config

    for recipe in sorted((ROOT / "configs").glob("*.yaml")):
        cfg = load_config(recipe)
        assert cfg.source.path.endswith(".jsonl"), recipe
