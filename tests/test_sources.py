"""prefmill/sources.py: prompt files, folders through `datasets`, row-numbered errors, stable ids."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from prefmill.config import SourceConfig
from prefmill.errors import InputError
from prefmill.sources import load_prompts, prompt_id, read_table


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _load(path: Path, **kw) -> pl.DataFrame:
    return load_prompts(SourceConfig(path=str(path), **kw))


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """`datasets` writes its Arrow cache here, not in the user's home."""
    import datasets

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    return cache


class TestPromptId:
    def test_whitespace_normalised_and_stable(self):
        assert prompt_id("How  many\n eggs?") == prompt_id("How many eggs?")
        assert prompt_id(" How many eggs? ") == prompt_id("How many eggs?")
        assert prompt_id("How many eggs?") != prompt_id("How many ducks?")
        assert len(prompt_id("x")) == 16 and int(prompt_id("x"), 16) >= 0


class TestReadTable:
    def test_bad_json_line_names_file_and_line(self, tmp_path):
        path = _jsonl(tmp_path / "p.jsonl", [{"question": "a"}, "", "{\"question\": oops}"])
        with pytest.raises(InputError) as info:
            read_table(path)
        assert info.value.message == f"{path}: row 3: not valid JSON: Expecting value"

    def test_non_object_line(self, tmp_path):
        path = _jsonl(tmp_path / "p.jsonl", [{"question": "a"}, [1, 2]])
        with pytest.raises(InputError) as info:
            read_table(path)
        assert info.value.message == f"{path}: row 2: expected a JSON object, got list"

    def test_blank_lines_skipped(self, tmp_path):
        path = _jsonl(tmp_path / "p.jsonl", ["", {"question": "a"}, "   ", {"question": "b"}])
        assert read_table(path)["question"].to_list() == ["a", "b"]

    def test_missing_file(self, tmp_path):
        with pytest.raises(InputError) as info:
            read_table(tmp_path / "none.jsonl")
        assert info.value.message == f"{tmp_path / 'none.jsonl'}: no such file"

    def test_unsupported_suffix(self, tmp_path):
        path = tmp_path / "p.csv"
        path.write_text("question\na\n")
        with pytest.raises(InputError) as info:
            read_table(path)
        assert info.value.message == f"{path}: unsupported file type '.csv'"

    def test_corrupt_parquet(self, tmp_path):
        path = tmp_path / "p.parquet"
        path.write_bytes(b"not parquet at all")
        with pytest.raises(InputError, match=r"p\.parquet: not a readable Parquet file"):
            read_table(path)


class TestLoadPrompts:
    def test_jsonl(self, tmp_path):
        path = _jsonl(tmp_path / "p.jsonl", [
            {"question": "How many?", "answer": "2 + 2 = <<2+2=4>>4\n#### 4"},
            {"question": "How much?", "answer": "#### 1,234"},
        ])

        out = _load(path)

        assert out.columns == ["prompt_id", "question", "reference", "reference_answer", "source_row"]
        assert out.rows() == [
            (prompt_id("How many?"), "How many?", "2 + 2 = <<2+2=4>>4\n#### 4", "4", 0),
            (prompt_id("How much?"), "How much?", "#### 1,234", "1234", 1),
        ]

    def test_missing_question_field(self, tmp_path):
        path = _jsonl(tmp_path / "p.jsonl", [{"q": "a", "answer": "1"}])
        with pytest.raises(InputError) as info:
            _load(path)
        assert info.value.message == f"{path}: field 'question' not found; fields are q, answer"
        assert info.value.hint == "set source.question_field / source.answer_field"

    def test_missing_answer_field(self, tmp_path):
        path = _jsonl(tmp_path / "p.jsonl", [{"question": "a"}])
        with pytest.raises(InputError, match="field 'answer' not found; fields are question"):
            _load(path)

    @pytest.mark.parametrize("bad", [{"question": "  ", "answer": "1"}, {"question": None, "answer": "1"}, {"answer": "1"}])
    def test_empty_question_names_row_and_field(self, tmp_path, bad):
        path = _jsonl(tmp_path / "p.jsonl", [{"question": "a", "answer": "1"}, {"question": "b", "answer": "1"}, bad])
        with pytest.raises(InputError) as info:
            _load(path)
        assert info.value.message == f"{path}: row 3, field 'question': empty or missing"
    def test_empty_question_row_is_the_file_line(self, tmp_path):
        path = _jsonl(tmp_path / "p.jsonl", [{"question": "a", "answer": "1"}, "", {"question": "", "answer": "1"}])
        with pytest.raises(InputError) as info:
            _load(path)
        assert info.value.message == f"{path}: row 3, field 'question': empty or missing"  # as read_table would say

    def test_empty_question_outside_the_window_is_ignored(self, tmp_path):
        path = _jsonl(tmp_path / "p.jsonl", [{"question": "", "answer": "1"}, {"question": "b", "answer": "2"}])
        assert _load(path, offset=1)["question"].to_list() == ["b"]

    def test_question_must_be_text(self, tmp_path):
        path = _jsonl(tmp_path / "p.jsonl", [{"question": 5, "answer": "1"}])
        with pytest.raises(InputError) as info:
            _load(path)
        assert info.value.message == f"{path}: row 1, field 'question': expected text, got number 5"

    def test_a_number_among_text_questions_is_refused_not_converted(self, tmp_path):
        path = _jsonl(tmp_path / "p.jsonl", [{"question": "a", "answer": "1"}, "", {"question": 42, "answer": "1"}])
        with pytest.raises(InputError) as info:
            _load(path)
        assert info.value.message == f"{path}: row 3, field 'question': expected text, got number 42"

    def test_a_bad_row_outside_the_window_is_ignored(self, tmp_path):
        path = _jsonl(tmp_path / "p.jsonl", [{"question": 42, "answer": "1"}, {"question": "b", "answer": "2"}])
        assert _load(path, offset=1)["question"].to_list() == ["b"]

    @pytest.mark.parametrize(("value", "got"), [("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity")])
    def test_non_finite_reference(self, tmp_path, value, got):
        path = _jsonl(tmp_path / "p.jsonl", [f'{{"question": "a", "answer": {value}}}'])
        with pytest.raises(InputError) as info:
            _load(path)
        assert info.value.message == f"{path}: row 1, field 'answer': expected text or a finite number, got {got}"

    def test_parquet_nan_reference_names_the_row(self, tmp_path):
        path = tmp_path / "p.parquet"
        pl.DataFrame({"question": ["x", "y"], "answer": [2.0, float("nan")]}).write_parquet(path)
        with pytest.raises(InputError) as info:
            _load(path)
        assert info.value.message == f"{path}: row 2, field 'answer': expected text or a finite number, got NaN"

    def test_parquet_reference_of_another_type(self, tmp_path):
        path = tmp_path / "p.parquet"
        pl.DataFrame({"question": ["x"], "answer": [True]}).write_parquet(path)
        with pytest.raises(InputError) as info:
            _load(path)
        assert info.value.message == f"{path}: row 1, field 'answer': expected text or a number, got true (the column is Boolean)"

    def test_not_utf8_names_row_and_column(self, tmp_path):
        path = tmp_path / "p.jsonl"
        path.write_bytes(b'{"question": "a", "answer": "1"}\n{"question": "\xff", "answer": "1"}\n')
        with pytest.raises(InputError) as info:
            _load(path)
        assert info.value.message == f"{path}: row 2: not UTF-8 text (byte 0xff at column 15)"
        assert info.value.hint == "save the file as UTF-8"

    def test_byte_order_mark_is_accepted(self, tmp_path):
        path = tmp_path / "p.jsonl"
        path.write_bytes(b'\xef\xbb\xbf{"question": "a", "answer": "1"}\n')
        assert _load(path)["question"].to_list() == ["a"]
        path.write_bytes(b'\xef\xbb\xbf{"question": "\xff", "answer": "1"}\n')
        with pytest.raises(InputError) as info:
            _load(path)
        assert info.value.message == f"{path}: row 1: not UTF-8 text (byte 0xff at column 15)"

    def test_empty_file(self, tmp_path):
        path = tmp_path / "p.jsonl"
        path.write_text("\n\n")
        with pytest.raises(InputError) as info:
            _load(path)
        assert info.value.message == f"{path}: no rows"

    def test_offset_past_the_end(self, tmp_path):
        path = _jsonl(tmp_path / "p.jsonl", [{"question": f"q{i}", "answer": str(i)} for i in range(6)])
        for offset in (6, 9):
            with pytest.raises(InputError) as info:
                _load(path, offset=offset)
            assert info.value.message == f"{path}: source.offset is {offset} but the file has 6 rows"

    def test_custom_fields_and_no_reference(self, tmp_path):
        path = _jsonl(tmp_path / "p.jsonl", [{"problem": "a"}, {"problem": "b"}])
        out = _load(path, question_field="problem", answer_field=None)
        assert out.select("question", "reference", "reference_answer").rows() == [("a", None, None), ("b", None, None)]

    def test_numeric_bare_reference(self, tmp_path):
        path = _jsonl(tmp_path / "p.jsonl", [{"question": "a", "answer": 18}, {"question": "b", "answer": None}])
        assert _load(path).select("reference", "reference_answer").rows() == [("18", "18"), (None, None)]

    def test_parquet(self, tmp_path):
        path = tmp_path / "p.parquet"
        pl.DataFrame({"question": ["x", "y"], "answer": ["#### 3", "4"], "extra": [1, 2]}).write_parquet(path)
        assert _load(path).select("question", "reference_answer", "source_row").rows() == [("x", "3", 0), ("y", "4", 1)]

    def test_offset_and_limit(self, tmp_path):
        path = _jsonl(tmp_path / "p.jsonl", [{"question": f"q{i}", "answer": str(i)} for i in range(6)])
        out = _load(path, offset=2, limit=3)
        assert out.select("question", "reference_answer", "source_row").rows() == [("q2", "2", 2), ("q3", "3", 3), ("q4", "4", 4)]
        assert _load(path, offset=5, limit=10)["question"].to_list() == ["q5"]

    def test_prompt_id_independent_of_row_order(self, tmp_path):
        rows = [{"question": f"question {i}", "answer": str(i)} for i in range(5)]
        a = _load(_jsonl(tmp_path / "a.jsonl", rows))
        b = _load(_jsonl(tmp_path / "b.jsonl", rows[::-1]))
        assert dict(a.select("question", "prompt_id").rows()) == dict(b.select("question", "prompt_id").rows())

    def test_duplicates_keep_first(self, tmp_path):
        path = _jsonl(tmp_path / "p.jsonl", [
            {"question": "a  b", "answer": "x = 1\n#### 1"}, {"question": "c", "answer": "3"},
            {"question": "a b", "answer": "so 1\n#### 1"},
        ])
        assert _load(path).select("question", "reference", "source_row").rows() == [
            ("a  b", "x = 1\n#### 1", 0), ("c", "3", 1),
        ]

    def test_conflicting_duplicates_are_refused(self, tmp_path):
        path = _jsonl(tmp_path / "p.jsonl", [
            {"question": "a  b", "answer": "1"}, {"question": "c", "answer": "3"}, {"question": "a b", "answer": "2"},
        ])
        with pytest.raises(InputError) as info:
            _load(path)
        assert info.value.message == (
            f"{path}: rows 1 and 3 have the same question (field 'question') but different references: '1' vs '2'"
        )

    def test_gsm8k_first_row(self, gsm8k_test):
        out = _load(gsm8k_test, limit=1)
        assert out.height == 1
        assert out["reference_answer"][0] == "18"
        assert out["question"][0].startswith("Janet\u2019s ducks lay 16 eggs per day.")
        assert out["source_row"][0] == 0


class TestLoadPromptsFromFolder:
    def test_single_train_file(self, tmp_path, hf_cache):
        folder = tmp_path / "ds"
        folder.mkdir()
        _jsonl(folder / "train.jsonl", [{"question": "x", "answer": "#### 3"}, {"question": "y", "answer": "#### 4"}])

        out = _load(folder)

        assert out.select("question", "reference_answer", "source_row").rows() == [("x", "3", 0), ("y", "4", 1)]
        assert hf_cache.is_dir()

    def test_split_selects_the_file(self, tmp_path, hf_cache):
        folder = tmp_path / "ds"
        folder.mkdir()
        _jsonl(folder / "train.jsonl", [{"question": "x", "answer": "1"}])
        _jsonl(folder / "test.jsonl", [{"question": "t1", "answer": "5"}, {"question": "t2", "answer": "6"},
                                       {"question": "t3", "answer": "7"}])

        out = _load(folder, split="test", offset=1, limit=1)

        assert out.select("question", "reference_answer", "source_row").rows() == [("t2", "6", 1)]

    def test_unknown_split(self, tmp_path, hf_cache):
        folder = tmp_path / "ds"
        folder.mkdir()
        _jsonl(folder / "train.jsonl", [{"question": "x", "answer": "1"}])
        with pytest.raises(InputError) as info:
            _load(folder, split="validation")
        assert info.value.message.startswith(f"{folder}: cannot load split 'validation' as a local folder or Hub dataset: ")
        assert "source.split" in info.value.hint

    def test_nonexistent_path(self, tmp_path, hf_cache):
        with pytest.raises(InputError) as info:
            _load(tmp_path / "missing")
        assert info.value.message == f"{tmp_path / 'missing'}: no such file or folder"

    def test_hub_dataset_while_offline(self, hf_cache):
        with pytest.raises(InputError) as info:
            _load("nobody-here/no-such-dataset")
        assert info.value.message.startswith(
            "nobody-here/no-such-dataset: cannot load split 'train' as a local folder or Hub dataset: "
        )
        assert len(info.value.message) < 400
        assert "HF_HUB_OFFLINE is set" in info.value.hint

    def test_non_utf8_file_in_a_folder(self, tmp_path, hf_cache):
        folder = tmp_path / "ds"
        folder.mkdir()
        (folder / "train.jsonl").write_bytes(b'{"question": "\xff", "answer": "1"}\n')
        with pytest.raises(InputError, match=rf"^{folder}: cannot load split 'train'"):
            _load(folder)

    def test_empty_question_in_folder(self, tmp_path, hf_cache):
        folder = tmp_path / "ds"
        folder.mkdir()
        _jsonl(folder / "train.jsonl", [{"question": "x", "answer": "1"}, {"question": "", "answer": "2"}])
        with pytest.raises(InputError) as info:
            _load(folder)
        assert info.value.message == f"{folder}: row 2, field 'question': empty or missing"
