"""prefmill/exports and `prefmill export`: each format's exact columns and labels, the OpenRLHF checks,
and the command's errors (one line, exit 2, nothing written). Real training steps: test_exports_training.py."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from prefmill.cli import app
from prefmill.errors import InputError, OutputError, StoreError
from prefmill.exports import write as export_write
from prefmill.exports.dpo import to_dpo
from prefmill.exports.openrlhf import check_tokenizer, openrlhf_input, to_openrlhf_prm
from prefmill.exports.prm import IGNORE_INDEX, to_prm, tokenize_prm
from prefmill.exports.write import export_version
from prefmill.models import default_model_dir
from prefmill.schemas.exports import DPO, DPO_RESERVED, OPENRLHF_PRM_HARD, OPENRLHF_PRM_SOFT, PRM
from prefmill.schemas.tables import PAIRS, STEPS
from prefmill.schemas.validate import conform
from prefmill.store import publish_version

runner = CliRunner()

QUESTIONS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
    "How many clips did Natalia sell altogether in April and May?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
    "Tom has 3 apples and buys 2. How many?",
]
STEP_ROWS = [  # completions, hard labels, soft values (None: not measured)
    (["Natalia sold 48/2 = <<48/2=24>>24 clips in May.", "Natalia sold 48+24 = <<48+24=72>>72 clips altogether.",
      "#### 72"], [True, True, True], [1.0, 1.0, 1.0]),
    (["Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.", "Working 50 minutes, she earned 0.2 x 60 = $12.",
      "#### 12"], [True, False, False], [0.75, 0.0, 0.0]),
    (["3 + 2 = 6", "#### 6"], [False, False], [0.25, None]),
    (["Tom starts with 3 apples.", "He buys 2 more, so 3 + 2 = 5.", "That is 5 apples.", "#### 5"],
     [True, True, True, True], [1.0, 0.875, 1.0, 1.0]),
]


def _messages(role: str, text: str) -> list[dict]:
    return [{"role": role, "content": text}]


def pairs_table(n: int = 4) -> pa.Table:
    q = [QUESTIONS[i % 2] for i in range(n)]
    return conform(pa.table({
        "pair_id": [f"s{2 * i}~s{2 * i + 1}" for i in range(n)], "prompt_id": [f"p{i % 2}" for i in range(n)],
        "prompt": [_messages("user", x) for x in q],
        "chosen": [_messages("assistant", f"Natalia sold 48/2 = 24 clips in May.\n#### {72 + i}") for i in range(n)],
        "rejected": [_messages("assistant", f"She sold 48 + 48 = 96 clips.\n#### {96 + i}") for i in range(n)],
        "strategy": ["verified_vs_incorrect"] * n, "chosen_source": ["sample"] * n,
        "rejected_sample_id": [f"s{2 * i + 1}" for i in range(n)], "chosen_engine": ["scripted:t"] * n,
        "rejected_engine": ["scripted:t"] * n, "chosen_score": [1.0 - i / 10 for i in range(n)],
        "rejected_score": [0.1 * i for i in range(n)], "margin": [1.0 - i / 5 for i in range(n)],
        "curriculum_rank": list(range(n)), "weight": [1.0] * n, "label_smoothing": [0.0] * n,
    }), PAIRS, where="test pairs", fill_nullable=True)


def steps_table(rows=STEP_ROWS) -> pa.Table:
    n = len(rows)
    return conform(pa.table({
        "prompt": [QUESTIONS[i % len(QUESTIONS)] for i in range(n)], "completions": [r[0] for r in rows],
        "labels": [r[1] for r in rows], "values": pa.array([r[2] for r in rows], pa.list_(pa.float64())),
        "rollout_counts": [[8] * len(r[0]) for r in rows], "method": ["mc"] * n, "chain_id": [f"c{i}" for i in range(n)],
        "prompt_id": [f"p{i % len(QUESTIONS)}" for i in range(n)], "engine": ["scripted:t"] * n,
    }), STEPS, where="test steps", fill_nullable=True)


def publish_preference(store: Path, dataset: str = "d", n: int = 4) -> str:
    return publish_version(store, dataset, {"pairs": pairs_table(n)}, config={"flow": "preference"}).name


def publish_process(store: Path, dataset: str = "d", rows=STEP_ROWS) -> str:
    return publish_version(store, dataset, {"steps": steps_table(rows)}, config={"flow": "process"}).name


def load_smollm_tokenizer():
    """SmolLM2-135M-Instruct's tokenizer from the prepared default model; skips the test without it."""
    folder = default_model_dir()
    if not (folder / "tokenizer_config.json").is_file():
        pytest.skip(f"the default model is not prepared at {folder} (run `make model` once)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def smollm_tokenizer():
    return load_smollm_tokenizer()


class TestToDpo:
    def test_trl_conversational_columns_then_ids_and_scores_in_order(self):
        pairs = pairs_table(3)
        out = to_dpo(pairs)
        assert out.schema == DPO
        assert out.column_names == ["prompt", "chosen", "rejected", "pair_id", "prompt_id", "chosen_score", "rejected_score"]
        row = out.slice(1, 1).to_pylist()[0]
        assert row["prompt"] == [{"role": "user", "content": QUESTIONS[1]}]
        assert row["chosen"] == [{"role": "assistant", "content": "Natalia sold 48/2 = 24 clips in May.\n#### 73"}]
        assert row["rejected"][0]["content"].endswith("#### 97")
        assert (row["pair_id"], row["chosen_score"], row["rejected_score"]) == ("s2~s3", 0.9, 0.1)

    def test_no_extra_column_takes_a_name_trl_reads(self):
        assert not set(DPO.names[3:]) & DPO_RESERVED


class TestToPrm:
    def test_stepwise_layout_with_hard_labels(self):
        skipped: dict[str, int] = {}
        out = to_prm(steps_table(), skipped=skipped)
        assert out.schema == PRM and skipped == {}
        rows = out.to_pylist()
        assert [r["labels"] for r in rows] == [r[1] for r in STEP_ROWS]
        assert rows[1]["completions"] == STEP_ROWS[1][0] and rows[1]["prompt"] == QUESTIONS[1]

    def test_a_step_without_label_is_skipped_with_its_reason(self):
        skipped: dict[str, int] = {}
        out = to_prm(steps_table([STEP_ROWS[0], (["a", "b"], [True, None], None)]), skipped=skipped)
        assert out.num_rows == 1 and skipped == {"null_label": 1}


class _WordTokenizer:
    """Words and newlines as tokens (ids from 10 on); BOS = 1 when special tokens are added."""

    def __init__(self):
        self.vocab: dict[str, int] = {}

    def _ids(self, text: str) -> list[int]:
        pieces = text.replace("\n", " \n ").split(" ")
        return [self.vocab.setdefault(p, 10 + len(self.vocab)) for p in pieces if p]

    def __call__(self, text, add_special_tokens=True, **_):
        return {"input_ids": ([1] if add_special_tokens else []) + self._ids(text)}

    def encode(self, text, add_special_tokens=True):
        return self(text, add_special_tokens=add_special_tokens)["input_ids"]


class TestTokenizePrm:
    def test_one_label_at_the_last_token_of_each_step(self):
        tok = _WordTokenizer()
        row = {"prompt": "How many?", "completions": ["3 + 2 = 5", "#### 5"], "labels": [True, False]}
        out = tokenize_prm(row, tok)
        ids, labels = out["input_ids"], out["labels"]
        words = {v: k for k, v in tok.vocab.items()}
        assert [words.get(i, "<bos>") for i in ids] == ["<bos>", "How", "many?", "\n", "3", "+", "2", "=", "5", "\n", "####", "5"]
        assert [(words[ids[i]], label) for i, label in enumerate(labels) if label != IGNORE_INDEX] == [("5", 1), ("5", 0)]
        assert [i for i, label in enumerate(labels) if label != IGNORE_INDEX] == [8, 11]
        assert out["attention_mask"] == [1] * len(ids)

    def test_steps_and_labels_of_different_length_is_an_error(self):
        with pytest.raises(InputError, match="row c9: 2 steps but 1 labels"):
            tokenize_prm({"prompt": "q", "completions": ["a", "b"], "labels": [True], "chain_id": "c9"}, _WordTokenizer())


class TestToOpenrlhfPrm:
    def test_math_shepherd_text_and_reward_token_labels(self):
        out = to_openrlhf_prm(steps_table(), labels="hard", skipped={})
        assert out.schema == OPENRLHF_PRM_HARD
        row = out.to_pylist()[1]
        assert row["input"] == (QUESTIONS[1] + "\nWeng earns 12/60 = $<<12/60=0.2>>0.2 per minute. ки\n"
                                "Working 50 minutes, she earned 0.2 x 60 = $12. ки\n#### 12 ки")
        assert row["label"] == ["+", "-", "-"]
        assert [r["input"].count("ки") for r in out.to_pylist()] == [len(r[0]) for r in STEP_ROWS]

    def test_soft_labels_are_the_values_and_rows_with_a_missing_value_are_skipped(self):
        skipped: dict[str, int] = {}
        out = to_openrlhf_prm(steps_table(), labels="soft", skipped=skipped)
        assert out.schema == OPENRLHF_PRM_SOFT and skipped == {"null_value": 1}
        assert out.column("label").to_pylist() == [STEP_ROWS[0][2], STEP_ROWS[1][2], STEP_ROWS[3][2]]

    def test_a_placeholder_inside_the_data_stops_the_export(self):
        with pytest.raises(InputError, match="chain c0: its question or a step contains the placeholder 'ки'"):
            to_openrlhf_prm(steps_table([(["пусть ки = 3", "#### 3"], [True, True], None)]), labels="hard", skipped={})

    def test_a_placeholder_the_tokenizer_merges_with_its_neighbours_is_refused(self):
        table = to_openrlhf_prm(steps_table(), labels="hard", skipped={}, placeholder="<p>")
        check_tokenizer(table, _WordTokenizer(), placeholder="<p>")  # a word of its own: one id per label

        class Glued(_WordTokenizer):  # the placeholder is one token alone, but merges after a space
            def _ids(self, text):
                return super()._ids(text.replace(" <p>", "_<p>"))

        with pytest.raises(InputError, match="chain c0: the text tokenizes to 0 placeholder tokens for 3 labels"):
            check_tokenizer(table, Glued(), placeholder="<p>")

    def test_smollm2_splits_the_example_placeholder_and_keeps_a_special_token(self, smollm_tokenizer):
        table = to_openrlhf_prm(steps_table(), labels="hard", skipped={}, placeholder="<empty_output>")
        check_tokenizer(table, smollm_tokenizer, placeholder="<empty_output>")
        with pytest.raises(InputError, match="'ки' is 2 tokens for this tokenizer"):
            check_tokenizer(to_openrlhf_prm(steps_table(), labels="hard", skipped={}), smollm_tokenizer)

    def test_input_layout(self):
        assert openrlhf_input("Q?", ["a", "b"], placeholder="<p>") == "Q?\na <p>\nb <p>"


class TestExportVersion:
    def test_parquet_and_jsonl_hold_the_same_rows(self, tmp_path):
        publish_process(tmp_path / "store")
        for name in ("steps.parquet", "steps.jsonl"):
            result = export_version(tmp_path / "store", "d", None, fmt="openrlhf-prm", out=tmp_path / name, labels="soft")
            assert (result.version, result.rows, result.skipped) == ("v0001", 3, {"null_value": 1})
        lines = [json.loads(line) for line in (tmp_path / "steps.jsonl").read_text().splitlines()]
        assert lines == pq.read_table(tmp_path / "steps.parquet").to_pylist()
        assert all(isinstance(v, float) for line in lines for v in line["label"])  # 1.0, not 1: floats for OpenRLHF

    def test_a_damaged_version_file_is_reported(self, tmp_path):
        publish_process(tmp_path / "store")
        (path,) = (tmp_path / "store" / "d" / "v0001" / "data" / "steps").glob("*.parquet")
        path.write_bytes(path.read_bytes()[:-10])
        with pytest.raises(StoreError, match="bytes"):
            export_version(tmp_path / "store", "d", "1", fmt="prm", out=tmp_path / "o.parquet")
        assert not (tmp_path / "o.parquet").exists()

    def test_a_write_that_fails_half_way_leaves_nothing(self, tmp_path, monkeypatch):
        publish_preference(tmp_path / "store")

        def half(table, path, **_):
            Path(path).write_bytes(b"PAR1 half")
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(export_write.pq, "write_table", half)
        with pytest.raises(OutputError, match="cannot write the export: No space left on device"):
            export_version(tmp_path / "store", "d", None, fmt="dpo", out=tmp_path / "out" / "pairs.parquet")
        assert list((tmp_path / "out").iterdir()) == []

    def test_nothing_to_export_is_an_error(self, tmp_path):
        publish_process(tmp_path / "store", rows=[STEP_ROWS[2]])
        with pytest.raises(InputError, match=r"no rows to export as openrlhf-prm \(1 null_value skipped\)"):
            export_version(tmp_path / "store", "d", None, fmt="openrlhf-prm", out=tmp_path / "o.jsonl", labels="soft")


def _export(store: Path, *args: str):
    return runner.invoke(app, ["export", *args, "--store", str(store)])


class TestExportCommand:
    def test_writes_the_file_and_says_what(self, tmp_path):
        publish_preference(tmp_path)
        publish_process(tmp_path)
        ok = _export(tmp_path, "d", "1", "--format", "dpo", "--out", str(tmp_path / "pairs.jsonl"))
        assert ok.exit_code == 0, ok.output
        assert "d v0001: wrote 4 rows (dpo) to" in ok.output
        assert len((tmp_path / "pairs.jsonl").read_text().splitlines()) == 4
        soft = _export(tmp_path, "d", "--format", "openrlhf-prm", "--labels", "soft", "--out", str(tmp_path / "s.parquet"))
        assert soft.exit_code == 0, soft.output
        assert "d v0002: wrote 3 rows (openrlhf-prm, soft labels)" in soft.output
        assert "skipped 1 rows: null_value" in soft.output and "openrlhf 0.5.6 - 0.9.5 fail on float labels" in soft.output

    @pytest.mark.parametrize(("args", "message"), [
        (["--format", "kto"], "'kto' is not one of"),
        (["--format", "prm", "--labels", "soft"], "--format prm has no soft labels"),
        (["--format", "dpo", "--labels", "soft"], "--format dpo has no soft labels"),
        (["1", "--format", "prm"], "d v0001: no `steps` config (it has pairs); --format prm needs a process-supervision"),
        (["2", "--format", "dpo"], "d v0002: no `pairs` config (it has steps)"),
        (["7", "--format", "dpo"], "no version 'v0007'"),
        (["2", "--format", "prm", "--placeholder", "<p>"], "--placeholder and --tokenizer apply to --format openrlhf-prm only"),
        (["--format", "openrlhf-prm", "--tokenizer", "/nonexistent"], "--tokenizer /nonexistent: not a folder"),
        (["--format", "openrlhf-prm", "--placeholder", " "], "placeholder ' ': must be non-empty text"),
    ])
    def test_bad_input_is_one_error_and_writes_nothing(self, tmp_path, args, message):
        publish_preference(tmp_path)
        publish_process(tmp_path)
        out = tmp_path / "out.parquet"
        bad = _export(tmp_path, "d", *args, "--out", str(out))
        assert bad.exit_code == 2, bad.output
        assert "Traceback" not in bad.output and not out.exists()
        assert message in " ".join(bad.output.split())

    def test_an_existing_output_is_never_overwritten(self, tmp_path):
        publish_preference(tmp_path)
        out = tmp_path / "pairs.parquet"
        out.write_text("mine")
        bad = _export(tmp_path, "d", "--format", "dpo", "--out", str(out))
        assert bad.exit_code == 2 and "already exists; an export never overwrites a file" in bad.output
        assert out.read_text() == "mine"

    @pytest.mark.parametrize(("out", "message"), [
        ("pairs.csv", "unsupported output type '.csv'"),
        ("afile/pairs.parquet", "is a file, not a folder"),
        ("/proc/prefmill-no-such/pairs.parquet", "cannot write the export"),
    ])
    def test_an_unwritable_output_is_one_error(self, tmp_path, out, message):
        publish_preference(tmp_path)
        (tmp_path / "afile").write_text("")
        bad = _export(tmp_path, "d", "--format", "dpo", "--out", str(tmp_path / out))
        assert bad.exit_code == 2 and message in " ".join(bad.output.split()) and "Traceback" not in bad.output


def test_split_train_and_test_are_the_publish_sides_and_partition_the_version(tmp_path):
    from prefmill.splits import held_out

    store = tmp_path / "store"
    publish_preference(store, n=40)  # prompt ids p0, p1: one test_size puts exactly one of them in test
    size = next(s for s in (0.1 * k for k in range(1, 10)) if held_out("p0", s) != held_out("p1", s))
    sides = {}
    for split in ("train", "test", "all"):
        result = export_version(store, "d", None, fmt="dpo", out=tmp_path / f"{split}.parquet", split=split, test_size=size)
        sides[split] = pq.read_table(result.path).to_pylist()
    train_ids = {r["prompt_id"] for r in sides["train"]}
    test_ids = {r["prompt_id"] for r in sides["test"]}
    assert train_ids and test_ids and not train_ids & test_ids
    assert test_ids == {p for p in ("p0", "p1") if held_out(p, size)}
    assert sorted(r["pair_id"] for r in sides["train"] + sides["test"]) == sorted(r["pair_id"] for r in sides["all"])
    with pytest.raises(InputError, match="--split 'dev'"):
        export_version(store, "d", None, fmt="dpo", out=tmp_path / "x.parquet", split="dev")
