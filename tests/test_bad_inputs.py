"""Bad input, through the real command line: ONE clear error (file, row, field, what was expected, what
came), exit code 2, no traceback, nothing written to the store, earlier versions byte-identical.

The catalogue (`CASES`) fails before a flow starts, so each case costs milliseconds; a few cases at the
end run a flow (scripted engine) or a subprocess of the installed `prefmill`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from prefmill.cli import app
from prefmill.engines.base import Completion
from prefmill.engines.cached import RolloutCache
from prefmill.store import publish_version
from tests.conftest import GSM8K, ROOT

TRAIN = GSM8K / "train.jsonl"
PREFMILL = Path(sys.executable).with_name("prefmill")
runner = CliRunner()


# -- helpers -------------------------------------------------------------------------------------


def snapshot(root: Path) -> dict[str, str]:
    """Every file's hash and every folder's mode under `root` (or the file `root` itself)."""
    if root.is_file():
        return {".": hashlib.sha256(root.read_bytes()).hexdigest()}
    if not root.exists():
        return {}
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else f"dir {oct(path.stat().st_mode)}"
    return out


def seeded_store(root: Path) -> Path:
    """A store with one published version of dataset `d`: what an earlier run wrote."""
    publish_version(root, "d", {"samples": pa.table({"a": [1, 2]}), "pairs": pa.table({"b": ["x"]})},
                    config={"k": 1}, info={"engine": "e", "stats": {"samples": {"samples": 2}, "pairs": {"pairs": 1}}})
    return root


def recipe(folder: Path, body: str = "", *, source: Path | str = TRAIN, dataset: str = "d", name: str = "recipe.yaml") -> Path:
    """Lines 1-6 are fixed, so `body` starts on line 7."""
    path = folder / name
    path.write_text(
        f"dataset: {dataset}\nsource:\n  path: {source}\n  limit: 4\nengine:\n  kind: scripted\n" + body, encoding="utf-8"
    )
    return path


def jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def assert_one_clear_error(output: str, needles: tuple[str, ...], *, max_chars: int = 2000) -> None:
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    said = [line for line in output.splitlines() if line.strip() and "examples/s]" not in line]  # `datasets` progress
    assert said[0].startswith(("error:", "warning:")), output
    for needle in needles:
        assert needle in output, f"{needle!r} not in:\n{output}"
    assert len(output) < max_chars, f"{len(output)} characters of output"


# -- the catalogue: (argv, what the error must say) ------------------------------------------------

Case = Callable[[Path, Path], tuple[list[str], tuple[str, ...]]]
CASES: dict[str, Case] = {}


def case(fn: Case) -> Case:
    CASES[fn.__name__] = fn
    return fn


def run_args(path: Path, store: Path, *more: str) -> list[str]:
    return ["run", str(path), "--store", str(store), *more]


# The recipe file itself.


@case
def recipe_missing(tmp, store):
    path = tmp / "nope.yaml"
    return run_args(path, store), (f"{path}: no such recipe file",)


@case
def recipe_is_a_folder(tmp, store):
    folder = tmp / "recipes"
    folder.mkdir()
    return run_args(folder, store), (f"{folder}: is a folder, not a recipe file",)


@case
def recipe_not_utf8(tmp, store):
    path = tmp / "latin1.yaml"
    path.write_bytes(f"dataset: d\n# caf\xe9\nsource: {{path: {TRAIN}}}\n".encode("latin-1"))
    return run_args(path, store), (f"{path}: line 2: not UTF-8 text (byte 0xe9)",)


@case
def recipe_invalid_yaml(tmp, store):
    path = tmp / "bad.yaml"
    path.write_text("dataset: d\nsource: [unclosed\n")
    return run_args(path, store), (f"{path}: not valid YAML", f'in "{path}", line 2, column 9')


@case
def recipe_not_a_mapping(tmp, store):
    path = tmp / "list.yaml"
    path.write_text("- a\n- b\n")
    return run_args(path, store), (f"{path}: expected a mapping of sections, got list",)


@case
def recipe_duplicate_section(tmp, store):
    path = recipe(tmp, "generate:\n  n: 3\ngenerate:\n  n: 5\n")
    return run_args(path, store), (f"{path}: duplicate key 'generate' (lines 7 and 9)",)


@case
def recipe_duplicate_nested_key(tmp, store):
    path = recipe(tmp, "generate:\n  n: 3\n  n: 5\n")
    return run_args(path, store), (f"{path}: duplicate key 'n' (lines 8 and 9)",)


@case
def recipe_billion_laughs(tmp, store):
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 9):
        prev, cur = chr(96 + i), chr(97 + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    path = tmp / "laughs.yaml"
    path.write_text(f"dataset: d\nsource: {{path: {TRAIN}}}\nlaughs:\n" + "".join(f"  {line}\n" for line in lines))
    assert path.stat().st_size < 1500
    return run_args(path, store), (f"{path}: aliases expand to more than",)


@case
def recipe_recursive_alias(tmp, store):
    path = recipe(tmp, "generate:\n  stop: &s [*s]\n")
    return run_args(path, store), (f"{path}: line 8: recursive alias",)


@case
def recipe_nested_too_deeply(tmp, store):
    path = recipe(tmp, "generate:\n  stop: " + "[" * 3000 + "]" * 3000 + "\n")
    return run_args(path, store), (f"{path}: nested too deeply",)


@case
def recipe_huge(tmp, store):
    path = recipe(tmp, "# padding\n" * 200_000)
    return run_args(path, store), (f"{path}: 2.0 MB; a recipe may be at most 1 MB",)


@case
def recipe_unknown_key(tmp, store):
    path = recipe(tmp, "generate:\n  nn: 3\n")
    return run_args(path, store), (f"{path}: invalid recipe", "generate.nn: Extra inputs are not permitted (got 3)")


@case
def recipe_out_of_range(tmp, store):
    path = recipe(tmp, "generate:\n  n: 0\n")
    return run_args(path, store), ("generate.n: Input should be greater than or equal to 1 (got 0)",)


@case
def recipe_quoted_int(tmp, store):
    path = recipe(tmp, "generate:\n  n: '6'\n")
    return run_args(path, store), (f"{path}: invalid recipe", "generate.n: expected an integer, got text '6'")


@case
def recipe_float_for_int(tmp, store):
    path = recipe(tmp, "generate:\n  n: 4.0\n")
    return run_args(path, store), ("generate.n: expected an integer, got 4.0",)


@case
def recipe_bool_for_int(tmp, store):
    path = recipe(tmp, "generate:\n  max_tokens: true\n")
    return run_args(path, store), ("generate.max_tokens: expected an integer, got true",)


@case
def recipe_yes_for_bool(tmp, store):
    path = recipe(tmp, "vote:\n  enabled: 'yes'\n")
    return run_args(path, store), ("vote.enabled: expected true or false, got text 'yes'",)


@case
def recipe_quoted_float(tmp, store):
    path = recipe(tmp, "generate:\n  temperature: '0.5'\n")
    return run_args(path, store), ("generate.temperature: expected a number, got text '0.5'",)


@case
def recipe_yes_in_a_preference_section(tmp, store):
    path = recipe(tmp, "filters:\n  require_swap_consistent: 'yes'\npairs:\n  max_pairs_per_prompt: '2'\n")
    return run_args(path, store), (
        "filters.require_swap_consistent: expected true or false, got text 'yes'",
        "pairs.max_pairs_per_prompt: expected an integer, got text '2'",
    )


@case
def recipe_quoted_int_in_engine_and_rise(tmp, store):
    path = recipe(tmp, "judge:\n  engine:\n    kind: scripted\n    seed: '3'\nrise:\n  edits_per_solution: 1.0\n")
    return run_args(path, store), (
        "judge.engine.seed: expected an integer, got text '3'", "rise.edits_per_solution: expected an integer, got 1.0",
    )


@case
def recipe_dataset_name_escapes_the_store(tmp, store):
    path = recipe(tmp, dataset="../evil")
    return run_args(path, store), ("dataset: String should match pattern",)


@case
def recipe_secret_in_base_url(tmp, store):
    path = recipe(tmp, "judge:\n  engine:\n    kind: openai\n    base_url: http://me:sekrit-token-123@host/v1\n")
    return run_args(path, store), ("judge.engine.base_url", "must not hold credentials")


# --set overrides.


@case
def set_secret_url_as_a_key(tmp, store):
    """A URL with credentials pasted where KEY=VALUE belongs: the error quotes the item, masked."""
    return run_args(recipe(tmp), store, "--set", "http://me:sekrit@host/v1"), ("--set 'http://***@host/v1': expected KEY=VALUE",)


@case
def set_secret_url_where_a_section_belongs(tmp, store):
    return run_args(recipe(tmp), store, "--set", "judge.engine=http://me:sekrit@host/v1?token=sekrit"), (
        "judge.engine: Input should be a valid dictionary", "http://***@host/v1?token=***",
    )


@case
def set_value_not_yaml(tmp, store):
    return run_args(recipe(tmp), store, "--set", "generate.n=[1"), ("--set 'generate.n=[1': the value is not valid YAML",)


@case
def set_without_equals(tmp, store):
    return run_args(recipe(tmp), store, "--set", "generate.n"), ("--set 'generate.n': expected KEY=VALUE",)


@case
def set_into_a_value(tmp, store):
    return run_args(recipe(tmp), store, "--set", "engine.kind.x=1"), (
        "--set 'engine.kind.x=1': cannot set 'engine.kind.x': 'kind' is not a section",
    )


# The prompt file.


@case
def source_missing_file(tmp, store):
    src = tmp / "nothere.jsonl"
    return run_args(recipe(tmp, source=src), store), (f"{src}: no such file",)


@case
def source_missing_folder(tmp, store):
    src = tmp / "no-such-folder"
    return run_args(recipe(tmp, source=src), store), (f"{src}: no such file or folder",)


@case
def source_unsupported_suffix(tmp, store):
    src = tmp / "p.csv"
    src.write_text("question,answer\na,1\n")
    return run_args(recipe(tmp, source=src), store), (f"{src}: unsupported file type '.csv'",)


@case
def source_not_utf8(tmp, store):
    src = tmp / "p.jsonl"
    src.write_bytes(b'{"question": "a", "answer": "1"}\n{"question": "caf\xe9", "answer": "1"}\n')
    return run_args(recipe(tmp, source=src), store), (f"{src}: row 2: not UTF-8 text (byte 0xe9 at column 18)",)


@case
def source_empty_file(tmp, store):
    src = tmp / "p.jsonl"
    src.write_text("")
    return run_args(recipe(tmp, source=src), store), (f"{src}: no rows",)


@case
def source_only_blank_lines(tmp, store):
    src = tmp / "p.jsonl"
    src.write_text("\n  \n\n")
    return run_args(recipe(tmp, source=src), store), (f"{src}: no rows",)


@case
def source_line_not_json(tmp, store):
    src = jsonl(tmp / "p.jsonl", [{"question": "a", "answer": "1"}, '{"question": oops}'])
    return run_args(recipe(tmp, source=src), store), (f"{src}: row 2: not valid JSON: Expecting value",)


@case
def source_line_not_an_object(tmp, store):
    src = jsonl(tmp / "p.jsonl", [{"question": "a", "answer": "1"}, "[1, 2]"])
    return run_args(recipe(tmp, source=src), store), (f"{src}: row 2: expected a JSON object, got list",)


@case
def source_line_nested_too_deeply(tmp, store):
    src = jsonl(tmp / "p.jsonl", ['{"question": "a", "answer": ' + "[" * 100_000 + "]" * 100_000 + "}"])
    return run_args(recipe(tmp, source=src), store), (f"{src}: row 1: not valid JSON: nested too deeply",)


@case
def source_question_is_a_number(tmp, store):
    src = jsonl(tmp / "p.jsonl", [{"question": "a", "answer": "1"}, {"question": 42, "answer": "1"}])
    return run_args(recipe(tmp, source=src), store), (f"{src}: row 2, field 'question': expected text, got number 42",)


@case
def source_question_is_a_list(tmp, store):
    src = jsonl(tmp / "p.jsonl", [{"question": ["a", "b"], "answer": "1"}])
    return run_args(recipe(tmp, source=src), store), (f"{src}: row 1, field 'question': expected text, got a list",)


@case
def source_question_empty(tmp, store):
    src = jsonl(tmp / "p.jsonl", [{"question": "a", "answer": "1"}, {"question": " ", "answer": "1"}])
    return run_args(recipe(tmp, source=src), store), (f"{src}: row 2, field 'question': empty or missing",)


@case
def source_question_field_missing(tmp, store):
    src = jsonl(tmp / "p.jsonl", [{"q": "a", "answer": "1"}])
    return run_args(recipe(tmp, source=src), store), (f"{src}: field 'question' not found; fields are q, answer",)


@case
def source_nan_reference(tmp, store):
    src = jsonl(tmp / "p.jsonl", ['{"question": "a", "answer": NaN}'])
    return run_args(recipe(tmp, source=src), store), (f"{src}: row 1, field 'answer': expected text or a finite number, got NaN",)


@case
def source_reference_is_an_object(tmp, store):
    src = jsonl(tmp / "p.jsonl", [{"question": "a", "answer": "1"}, {"question": "b", "answer": {"x": 1}}])
    return run_args(recipe(tmp, source=src), store), (f"{src}: row 2, field 'answer': expected text or a number, got an object",)


@case
def source_reference_is_a_bool(tmp, store):
    src = jsonl(tmp / "p.jsonl", [{"question": "a", "answer": True}])
    return run_args(recipe(tmp, source=src), store), (f"{src}: row 1, field 'answer': expected text or a number, got true",)


@case
def source_conflicting_duplicates(tmp, store):
    src = jsonl(tmp / "p.jsonl", [
        {"question": "How many eggs?", "answer": "#### 18"}, {"question": "b", "answer": "1"},
        {"question": "How  many eggs?", "answer": "#### 19"},
    ])
    return run_args(recipe(tmp, source=src), store), (
        f"{src}: rows 1 and 3 have the same question (field 'question') but different references: '18' vs '19'",
    )


@case
def source_offset_past_the_end(tmp, store):
    path = recipe(tmp, "", source=TRAIN)
    return run_args(path, store, "--set", "source.offset=1000000"), (
        f"{TRAIN}: source.offset is 1000000 but the file has 7473 rows",
    )


@case
def source_parquet_truncated(tmp, store):
    src = tmp / "p.parquet"
    pl.DataFrame({"question": ["a"] * 100, "answer": ["1"] * 100}).write_parquet(src)
    src.write_bytes(src.read_bytes()[:-40])
    return run_args(recipe(tmp, source=src), store), (f"{src}: not a readable Parquet file",)


@case
def source_parquet_question_is_a_number(tmp, store):
    src = tmp / "p.parquet"
    pl.DataFrame({"question": [None, 5], "answer": ["1", "2"]}).write_parquet(src)
    return run_args(recipe(tmp, source=src), store), (f"{src}: row 2, field 'question': expected text, got number 5",)


@case
def source_parquet_nan_reference(tmp, store):
    src = tmp / "p.parquet"
    pl.DataFrame({"question": ["a", "b"], "answer": [1.5, math.nan]}).write_parquet(src)
    return run_args(recipe(tmp, source=src), store), (f"{src}: row 2, field 'answer': expected text or a finite number, got NaN",)


@case
def source_hub_dataset_while_offline(tmp, store):
    return run_args(recipe(tmp, source="someone/no-such-dataset"), store), (
        "someone/no-such-dataset: cannot load split 'train' as a local folder or Hub dataset", "HF_HUB_OFFLINE is set",
    )


@case
def source_folder_with_non_utf8_file(tmp, store):
    folder = tmp / "ds"
    folder.mkdir()
    (folder / "train.jsonl").write_bytes(b'{"question": "caf\xe9", "answer": "1"}\n')
    return run_args(recipe(tmp, source=folder), store), (f"{folder}: cannot load split 'train'",)


# Decontamination sets.


@case
def eval_file_missing(tmp, store):
    ev = tmp / "eval.jsonl"
    path = recipe(tmp, f"decontamination:\n  enabled: true\n  eval_files: [{ev}]\n")
    return run_args(path, store), (f"{ev}: no such file",)


@case
def eval_file_not_utf8(tmp, store):
    ev = tmp / "eval.jsonl"
    ev.write_bytes(b'{"question": "caf\xe9"}\n')
    path = recipe(tmp, f"decontamination:\n  enabled: true\n  eval_files: [{ev}]\n")
    return run_args(path, store), (f"{ev}: row 1: not UTF-8 text",)


@case
def eval_file_without_the_field(tmp, store):
    ev = jsonl(tmp / "eval.jsonl", [{"problem": "x"}])
    path = recipe(tmp, f"decontamination:\n  enabled: true\n  eval_files: [{ev}]\n")
    return run_args(path, store), (f"{ev}: decontamination field 'question' not found",)


# Models.


@case
def model_folder_missing(tmp, store):
    model = tmp / "models" / "mine"
    path = recipe(tmp)
    return run_args(path, store, "--set", "engine.kind=vllm", "--set", f"engine.model={model}"), (
        f"{path}: engine.model: no model folder at {model}",
    )


@case
def judge_model_is_a_file(tmp, store):
    model = tmp / "weights.safetensors"
    model.write_bytes(b"\0" * 8)
    path = recipe(tmp, f"judge:\n  engine:\n    kind: vllm\n    model: {model}\n")
    return run_args(path, store), (f"{path}: judge.engine.model: no model folder at {model}: it is a file",)


# The store.


@case
def store_is_a_file(tmp, store):
    target = tmp / "store-file"
    target.write_text("not a store")
    return run_args(recipe(tmp), target), (f"{target}: the store is a file, not a folder",)


@case
def dataset_folder_is_a_file(tmp, store):
    (store / "d2").write_text("not a dataset")
    return run_args(recipe(tmp, dataset="d2"), store), (f"{store / 'd2'}: is a file, not a dataset folder",)


@case
def cache_folder_is_a_file(tmp, store):
    (store / ".cache").write_text("not a cache")
    return run_args(recipe(tmp), store), (f"{store / '.cache'}: is a file, not a folder",)


# Read-side commands.


@case
def versions_dataset_escapes_the_store(tmp, store):
    return ["versions", "../d", "--store", str(store)], ("dataset name '../d' is not valid",)


@case
def show_dataset_escapes_the_store(tmp, store):
    return ["show", "../../etc", "--store", str(store)], ("dataset name '../../etc' is not valid",)


@case
def query_dataset_escapes_the_store(tmp, store):
    return ["query", "select 1", "--dataset", "../d", "--store", str(store)], ("dataset name '../d' is not valid",)


@case
def versions_of_an_unknown_dataset(tmp, store):
    return ["versions", "nope", "--store", str(store)], (f"{store / 'nope'}: no versions of dataset 'nope'",)


@case
def show_unknown_version(tmp, store):
    return ["show", "d", "v0009", "--store", str(store)], ("no version 'v0009'; versions are v0001",)


@case
def show_damaged_manifest(tmp, store):
    manifest = store / "d" / "v0001" / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])
    return ["show", "d", "--store", str(store)], (f"{manifest}: not valid JSON",)


@case
def versions_whose_only_manifest_was_deleted(tmp, store):
    (store / "d" / "v0001" / "manifest.json").unlink()
    return ["versions", "d", "--store", str(store)], (
        f"warning: {store / 'd' / 'v0001'}: no manifest.json", "no versions of dataset 'd'",
    )


# `prefmill verify`.


def verify_args(src: Path, out: Path) -> list[str]:
    return ["verify", str(src), "--completion-field", "c", "--reference-field", "r", "--out", str(out)]


@case
def verify_input_not_utf8(tmp, store):
    src = tmp / "in.jsonl"
    src.write_bytes(b'{"c": "#### 1", "r": "1"}\n{"c": "\xff", "r": "1"}\n')
    return verify_args(src, tmp / "o.jsonl"), (f"{src}: row 2: not UTF-8 text (byte 0xff at column 8)",)


@case
def verify_out_is_a_folder(tmp, store):
    src = jsonl(tmp / "in.jsonl", [{"c": "#### 1", "r": "1"}])
    out = tmp / "out.jsonl"
    out.mkdir()
    return verify_args(src, out), (f"{out}: is a folder; --out needs a file name",)


@case
def verify_out_folder_is_a_file(tmp, store):
    src = jsonl(tmp / "in.jsonl", [{"c": "#### 1", "r": "1"}])
    (tmp / "plain").write_text("x")
    out = tmp / "plain" / "o.jsonl"
    return verify_args(src, out), (f"{out}: cannot write the output: {tmp / 'plain'} is a file, not a folder",)


@case
def verify_input_is_a_folder(tmp, store):
    folder = tmp / "in.jsonl"
    folder.mkdir()
    return verify_args(folder, tmp / "o.jsonl"), (f"{folder}: is a folder, not a JSONL or Parquet file",)


@case
def verify_input_empty(tmp, store):
    src = tmp / "in.jsonl"
    src.write_text("")
    return verify_args(src, tmp / "o.jsonl"), (f"{src}: no rows",)


@case
def verify_missing_field(tmp, store):
    src = jsonl(tmp / "in.jsonl", [{"c": "#### 1", "ref": "1"}])
    return verify_args(src, tmp / "o.jsonl"), (f"{src}: field 'r' not found; fields are c, ref",)


@case
def verify_nan_reference(tmp, store):
    src = jsonl(tmp / "in.jsonl", ['{"c": "#### 1", "r": 1}', '{"c": "#### 1", "r": NaN}'])
    return verify_args(src, tmp / "o.jsonl"), (f"{src}: row 2, field 'r': expected text or a finite number, got NaN",)


@case
def verify_completion_is_a_list(tmp, store):
    src = jsonl(tmp / "in.jsonl", [{"c": "#### 1", "r": "1"}, {"c": ["#### 1"], "r": "1"}])
    return verify_args(src, tmp / "o.jsonl"), (f"{src}: row 2, field 'c': expected text or a number, got a list",)


@case
def verify_unsupported_output(tmp, store):
    src = jsonl(tmp / "in.jsonl", [{"c": "#### 1", "r": "1"}])
    out = tmp / "o.csv"
    return verify_args(src, out), (f"{out}: unsupported output type '.csv'",)


def test_the_catalogue_is_large():
    assert len(CASES) >= 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_with_one_clear_error(name, tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")  # a folder source caches here
    store = seeded_store(tmp_path / "store")
    work = tmp_path / "work"
    work.mkdir()
    argv, needles = CASES[name](work, store)
    before_store, before_work = snapshot(store), snapshot(work)

    result = runner.invoke(app, argv)

    assert result.exit_code == 2, result.output
    assert_one_clear_error(result.output, needles)
    assert "sekrit" not in result.output
    assert snapshot(store) == before_store  # nothing written, earlier versions byte-identical
    assert snapshot(work) == before_work  # no output, no temporary file, no recipe rewritten


# -- cases that need more than a CLI call ---------------------------------------------------------


def test_read_only_store_as_another_user(tmp_path):
    """Root writes anywhere, so the store is refused to an unprivileged user (setpriv), in a real process."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run as another user")
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    if subprocess.run([*as_nobody, str(PREFMILL), "--help"], capture_output=True, timeout=60).returncode != 0:
        pytest.skip("the checkout's virtualenv is not readable by an unprivileged user here")
    shared = Path(tempfile.mkdtemp(prefix="prefmill-ro-", dir="/tmp"))
    try:
        shared.chmod(0o755)
        store = seeded_store(shared / "store")
        path = recipe(shared)
        path.chmod(0o644)
        before = snapshot(store)
        env = {**os.environ, "HOME": str(shared), "PREFECT_HOME": str(shared / "prefect")}
        proc = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(PREFMILL), "run", str(path),
             "--store", str(store)],
            capture_output=True, text=True, env=env, cwd=shared, timeout=120,
        )
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert_one_clear_error(proc.stderr, (f"{store}: cannot write to the store: Permission denied",))
        assert snapshot(store) == before
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_versions_warns_about_a_version_without_manifest(tmp_path):
    store = seeded_store(tmp_path)
    publish_version(store, "d", {"samples": pa.table({"a": [3]})}, config={"k": 2})
    (store / "d" / "v0001" / "manifest.json").unlink()
    before = snapshot(store)

    result = runner.invoke(app, ["versions", "d", "--store", str(store)])

    assert result.exit_code == 0, result.output
    assert "v0002" in result.output
    assert f"warning: {store / 'd' / 'v0001'}: no manifest.json" in result.output
    assert snapshot(store) == before


def test_manifest_from_a_newer_prefmill_is_shown(tmp_path):
    store = seeded_store(tmp_path)
    manifest = store / "d" / "v0001" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["format"] = {"version": 7, "features": ["sharded"]}
    del data["created_at"]
    manifest.write_text(json.dumps(data))

    listed = runner.invoke(app, ["versions", "d", "--store", str(store)])
    shown = runner.invoke(app, ["show", "d", "--store", str(store)])

    assert listed.exit_code == 0 and "v0001" in listed.output, listed.output
    assert shown.exit_code == 0 and json.loads(shown.output)["format"]["version"] == 7


def test_every_shipped_recipe_still_loads():
    from prefmill.config import load_config, validate_config

    for path in sorted((ROOT / "configs").glob("*.yaml")):
        cfg = load_config(path)
        assert validate_config(cfg.model_dump(mode="json")) == cfg  # what a flow re-validates


# -- cases that run a flow ------------------------------------------------------------------------


def _flow_recipe(folder: Path, dataset: str) -> Path:
    return recipe(folder, "generate:\n  n: 2\n  chunk_size: 2\nvote:\n  enabled: false\n", dataset=dataset)


@pytest.mark.usefixtures("prefect_server")
def test_disk_full_while_publishing_writes_nothing(tmp_path):
    """A real `prefmill` process whose Parquet writer fails with ENOSPC inside the publish task."""
    from prefect.settings import PREFECT_API_URL

    store = seeded_store(tmp_path / "store")
    path = _flow_recipe(tmp_path, "d")
    before = {k: v for k, v in snapshot(store).items() if not k.startswith(".cache")}
    full = (
        "import errno, sys, pyarrow.parquet as pq\n"
        "real = pq.write_table\n"
        "def full(table, where, *a, **k):\n"
        "    if '.staging-' in str(where):\n"
        "        raise OSError(errno.ENOSPC, 'No space left on device', str(where))\n"
        "    return real(table, where, *a, **k)\n"
        "pq.write_table = full\n"
        "from prefmill.cli import app\n"
        "sys.argv[0] = 'prefmill'\n"
        "app()\n"
    )
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}

    proc = subprocess.run([sys.executable, "-c", full, "run", str(path), "--store", str(store)],
                          capture_output=True, text=True, env=env, timeout=300)

    assert proc.returncode == 2, proc.stdout + proc.stderr
    if os.environ.get("PREFMILL_SHOW_STDERR"):
        print(proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "No space left on device" in error[0], proc.stderr
    assert f"{store / 'd'}: cannot publish a version" in error[0]
    after = {k: v for k, v in snapshot(store).items() if not k.startswith(".cache")}
    assert after == before  # no new version, no staging folder, v0001 byte-identical


@pytest.mark.usefixtures("prefect_server")
def test_truncated_rollout_shard_is_moved_aside_and_regenerated(tmp_path):
    store = seeded_store(tmp_path / "store")
    shards = store / ".cache" / "rollouts"
    RolloutCache(shards).put({"k": Completion(0, "text", 1, -0.5, "stop")})
    (shard,) = shards.glob("shard-*.parquet")
    shard.write_bytes(shard.read_bytes()[:30])
    v1 = snapshot(store / "d" / "v0001")

    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logging.getLogger("prefmill").addHandler(handler)  # Prefect reconfigures logging, so not caplog
    try:
        result = runner.invoke(app, ["run", str(_flow_recipe(tmp_path, "fresh")), "--store", str(store)])
    finally:
        logging.getLogger("prefmill").removeHandler(handler)

    assert result.exit_code == 0, result.output
    assert (store / "fresh" / "v0001" / "manifest.json").is_file()
    assert not shard.exists() and shard.with_name(shard.name + ".corrupt").is_file()
    assert any(str(shard) in r.getMessage() and "moved aside" in r.getMessage() for r in records), records
    manifest = json.loads((store / "fresh" / "v0001" / "manifest.json").read_text())
    assert manifest["stats"]["samples"]["samples"] == 8  # 4 prompts x 2 samples, generated again
    assert snapshot(store / "d" / "v0001") == v1
