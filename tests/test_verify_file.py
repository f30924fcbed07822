"""prefmill/verify_file.py: `prefmill verify` over a JSONL/Parquet file of completions."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from prefmill.errors import InputError, OutputError
from prefmill.verify_file import verify_file

ROWS = [
    {"id": 1, "completion": "9 * 2 = 18\n#### 18", "reference": "She makes 9 * 2 = $<<9*2=18>>18.\n#### 18"},
    {"id": 2, "completion": "The answer is 18.", "reference": 18},
    {"id": 3, "completion": "The answer is 17.", "reference": 18},
    {"id": 4, "completion": "", "reference": 5},
    {"id": 5, "completion": "no idea", "reference": "#### 1,234"},
]
EXPECTED = [
    (1, "18", "18", True, None),
    (2, "18", "18", True, None),
    (3, "18", "17", False, None),
    (4, "5", None, False, "empty_completion"),
    (5, "1234", None, False, "no_answer_found"),
]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _run(src: Path, out: Path, **kw) -> dict[str, int]:
    return verify_file(src, completion_field=kw.get("completion", "completion"),
                       reference_field=kw.get("reference", "reference"), out=out)


class TestVerifyFile:
    def test_jsonl_to_parquet(self, tmp_path):
        out = tmp_path / "out" / "checked.parquet"

        counts = _run(_jsonl(tmp_path / "in.jsonl", ROWS), out)

        assert counts == {"rows": 5, "correct": 2, "unjudged": {"empty_completion": 1, "no_answer_found": 1}}
        frame = pl.read_parquet(out)
        assert frame.columns == ["id", "completion", "reference", "reference_answer", "extracted", "correct", "verify_error"]
        assert frame.select("id", "reference_answer", "extracted", "correct", "verify_error").rows() == EXPECTED
        assert frame["reference"][1] == "18"  # the bare int reference, as text

    def test_jsonl_to_jsonl(self, tmp_path):
        out = tmp_path / "checked.jsonl"

        counts = _run(_jsonl(tmp_path / "in.jsonl", ROWS), out)

        assert (counts["rows"], counts["correct"]) == (5, 2)
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert [(r["id"], r["reference_answer"], r["extracted"], r["correct"], r["verify_error"]) for r in lines] == EXPECTED

    def test_parquet_input_with_custom_fields(self, tmp_path):
        src = tmp_path / "in.parquet"
        pl.DataFrame({"text": ["#### 0.5", "#### 2"], "gold": ["1/2", "3"]}).write_parquet(src)

        counts = _run(src, tmp_path / "o.jsonl", completion="text", reference="gold")

        assert (counts["rows"], counts["correct"]) == (2, 1)

    def test_float_and_null_references(self, tmp_path):
        src = _jsonl(tmp_path / "in.jsonl", [{"c": "#### 2.5", "r": 2.5}, {"c": "#### 3", "r": None}])
        _run(src, tmp_path / "o.parquet", completion="c", reference="r")
        assert pl.read_parquet(tmp_path / "o.parquet").select("reference_answer", "correct", "verify_error").rows() == [
            ("2.5", True, None), (None, False, "no_reference"),
        ]

    def test_numeric_completion_field(self, tmp_path):
        src = _jsonl(tmp_path / "in.jsonl", [{"completion": 18, "reference": 18}])
        counts = _run(src, tmp_path / "o.jsonl")
        assert (counts["rows"], counts["correct"], counts["unjudged"]) == (1, 1, {})

    @pytest.mark.parametrize("field", ["completion", "reference"])
    def test_missing_field(self, tmp_path, field):
        src = _jsonl(tmp_path / "in.jsonl", [{"completion": "#### 1", "reference": "1"}])
        kw = {field: "nope"}
        with pytest.raises(InputError) as info:
            _run(src, tmp_path / "o.jsonl", **kw)
        assert info.value.message == f"{src}: field 'nope' not found; fields are completion, reference"
        assert list(tmp_path.iterdir()) == [src]

    def test_non_text_field(self, tmp_path):
        src = _jsonl(tmp_path / "in.jsonl", [{"completion": "1", "reference": "1"}, {"completion": ["a"], "reference": "1"}])
        with pytest.raises(InputError) as info:
            _run(src, tmp_path / "o.jsonl")
        assert info.value.message == f"{src}: row 2, field 'completion': expected text or a number, got a list [\"a\"]"

    def test_non_text_parquet_column(self, tmp_path):
        src = tmp_path / "in.parquet"
        pl.DataFrame({"completion": [None, ["a"]], "reference": ["1", "2"]}).write_parquet(src)
        with pytest.raises(InputError) as info:
            _run(src, tmp_path / "o.jsonl")
        assert info.value.message == (
            f"{src}: row 2, field 'completion': expected text or a number, got a list [\"a\"] (the column is List(String))"
        )

    def test_nan_reference_names_the_row(self, tmp_path):
        src = tmp_path / "in.parquet"
        pl.DataFrame({"completion": ["#### 1", "#### 2"], "reference": [1.0, float("nan")]}).write_parquet(src)
        with pytest.raises(InputError) as info:
            _run(src, tmp_path / "o.jsonl")
        assert info.value.message == f"{src}: row 2, field 'reference': expected text or a finite number, got NaN"

    def test_not_utf8(self, tmp_path):
        src = tmp_path / "in.jsonl"
        src.write_bytes(b'{"completion": "\xe9", "reference": "1"}\n')
        with pytest.raises(InputError) as info:
            _run(src, tmp_path / "o.jsonl")
        assert info.value.message == f"{src}: row 1: not UTF-8 text (byte 0xe9 at column 17)"
        assert list(tmp_path.iterdir()) == [src]

    def test_output_is_a_folder(self, tmp_path):
        src = _jsonl(tmp_path / "in.jsonl", ROWS)
        (tmp_path / "o.jsonl").mkdir()
        with pytest.raises(OutputError) as info:
            _run(src, tmp_path / "o.jsonl")
        assert info.value.message == f"{tmp_path / 'o.jsonl'}: is a folder; --out needs a file name ending in .parquet or .jsonl"
        assert list((tmp_path / "o.jsonl").iterdir()) == []

    def test_empty_input(self, tmp_path):
        src = tmp_path / "in.jsonl"
        src.write_text("")
        with pytest.raises(InputError) as info:
            _run(src, tmp_path / "o.jsonl")
        assert info.value.message == f"{src}: no rows"

    def test_unsupported_output_suffix(self, tmp_path):
        src = _jsonl(tmp_path / "in.jsonl", ROWS)
        with pytest.raises(OutputError) as info:
            _run(src, tmp_path / "o.csv")
        assert info.value.message == f"{tmp_path / 'o.csv'}: unsupported output type '.csv'"
        assert info.value.hint == "use .parquet or .jsonl"
        assert list(tmp_path.iterdir()) == [src]

    def test_missing_input(self, tmp_path):
        with pytest.raises(InputError, match="no such file"):
            _run(tmp_path / "none.jsonl", tmp_path / "o.jsonl")

    def test_failed_write_leaves_no_output_and_no_temp_file(self, tmp_path, monkeypatch):
        src = _jsonl(tmp_path / "in.jsonl", ROWS)
        out_dir = tmp_path / "out"

        def broken(self, *a, **kw):
            raise OSError("disk full")

        monkeypatch.setattr(pl.DataFrame, "write_ndjson", broken)

        with pytest.raises(OutputError) as info:
            _run(src, out_dir / "o.jsonl")

        assert info.value.message == f"{out_dir / 'o.jsonl'}: cannot write the output: disk full"

        assert list(out_dir.iterdir()) == []

    def test_failed_write_keeps_the_previous_output(self, tmp_path, monkeypatch):
        src = _jsonl(tmp_path / "in.jsonl", ROWS)
        out = tmp_path / "o.parquet"
        _run(src, out)
        before = out.read_bytes()

        def broken(self, *a, **kw):
            raise OSError("disk full")

        monkeypatch.setattr(pl.DataFrame, "write_parquet", broken)

        with pytest.raises(OutputError, match="cannot write the output: disk full"):
            _run(_jsonl(tmp_path / "in2.jsonl", ROWS[:1]), out)

        assert out.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "in2.jsonl", "o.parquet"]
