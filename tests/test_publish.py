"""prefmill/hub.py and prefmill/card.py: publishing a version to the Hub (a recorded fake HfApi, never
the network) or to a local folder, and the dataset card."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from prefmill.schemas.tables import PAIRS, RISE_STEPS, SCORED, STEP_PAIRS, STEPS, VOTES
from prefmill.schemas.validate import conform

from prefmill.card import card_marker, front_matter, render_card
from prefmill.errors import StoreError
from prefmill.hub import PublishResult, local_target, publish, redact
from prefmill.store import publish_version

Q = [{"role": "user", "content": "Tom has 3 apples and buys 2. How many?"}]
TOKEN = "hf_SeCrEtToKeN1234567890abcdef"


def _table(schema: pa.Schema, columns: dict) -> pa.Table:
    return conform(pa.table(columns), schema, where="test", fill_nullable=True)


def _samples(n: int) -> pa.Table:
    return _table(SCORED, {
        "sample_id": [f"s{i}" for i in range(n)], "prompt_id": [f"p{i // 2}" for i in range(n)],
        "sample_index": [i % 2 for i in range(n)], "prompt": [Q] * n, "completion": [f"3 + 2 = 5\n#### {5 + i % 2}" for i in range(n)],
        "num_tokens": [9] * n, "finish_reason": ["stop"] * n, "engine": ["scripted:t"] * n,
        "reference_answer": ["5"] * n, "extracted": [str(5 + i % 2) for i in range(n)], "correct": [i % 2 == 0 for i in range(n)],
        "judge_scores": [[7, 8]] * n,
    })


def _pairs(n: int) -> pa.Table:
    return _table(PAIRS, {
        "pair_id": [f"s{2 * i}~s{2 * i + 1}" for i in range(n)], "prompt_id": [f"p{i}" for i in range(n)], "prompt": [Q] * n,
        "chosen": [[{"role": "assistant", "content": "3 + 2 = 5\n#### 5"}]] * n,
        "rejected": [[{"role": "assistant", "content": "3 + 2 = 6\n#### 6"}]] * n,
        "strategy": ["verified_vs_incorrect"] * (n - 1) + ["rise"], "chosen_source": ["sample"] * n,
        "rejected_sample_id": [f"s{2 * i + 1}" for i in range(n)], "chosen_engine": ["scripted:t"] * n,
        "rejected_engine": ["scripted:t"] * n, "margin": [0.9] * n, "curriculum_rank": list(range(n)), "weight": [1.0] * n,
        "swap_consistent": [True] * (n - 1) + [None], "error_type": [None] * (n - 1) + ["change_number"],
        "edit_span": [None] * (n - 1) + [{"start": 4, "end": 5}],
        "edit_diff": [None] * (n - 1) + [[{"op": "replace", "chosen_start": 4, "chosen_end": 5, "rejected_start": 4,
                                          "rejected_end": 5}]],
    })


def _votes(n: int) -> pa.Table:
    return _table(VOTES, {
        "prompt_id": [f"p{i}" for i in range(n)], "n_samples": [2] * n, "n_answered": [2] * n, "n_classes": [2] * n,
        "majority_answer": ["5"] * n, "vote_share": [0.5] * n, "weighted_share": [0.5] * n, "pass_rate": [0.5] * n,
        "label_source": ["reference"] * n, "label_confidence": [1.0] * n, "difficulty": ["medium"] * n,
    })


def _rise_steps(n: int) -> pa.Table:
    return _table(RISE_STEPS, {
        "pair_id": [f"e{i}" for i in range(n)], "prompt_id": [f"p{i}" for i in range(n)], "prompt": [Q] * n,
        "prefix": [""] * n, "chosen": [[{"role": "assistant", "content": "3 + 2 = 5"}]] * n,
        "rejected": [[{"role": "assistant", "content": "3 + 2 = 6"}]] * n, "error_type": ["change_number"] * n,
        "edited_step": [0] * n, "edit_span_chosen": [{"start": 8, "end": 9}] * n,
        "edit_span_rejected": [{"start": 8, "end": 9}] * n, "changed_share": [0.2] * n, "editor": ["rules"] * n,
        "source": ["reference"] * n,
    })


def _steps(n: int) -> pa.Table:
    return _table(STEPS, {
        "prompt": ["Tom has 3 apples and buys 2. How many?"] * n, "completions": [["3 + 2 = 5", "#### 5"]] * n,
        "labels": [[True, i % 2 == 0] for i in range(n)], "values": [[1.0, 0.5]] * n, "rollout_counts": [[4, 4]] * n,
        "first_error_step": [None if i % 2 == 0 else 1 for i in range(n)], "method": ["mc"] * n,
        "chain_id": [f"c{i}" for i in range(n)], "prompt_id": [f"p{i}" for i in range(n)], "engine": ["scripted:t"] * n,
    })


def _step_pairs(n: int) -> pa.Table:
    return _table(STEP_PAIRS, {
        "pair_id": [f"sp{i}" for i in range(n)], "prompt_id": [f"p{i}" for i in range(n)], "prompt": [Q] * n,
        "chosen": [[{"role": "assistant", "content": "3 + 2 = 5"}]] * n,
        "rejected": [[{"role": "assistant", "content": "3 + 2 = 6"}]] * n, "prefix_steps": [0] * n,
        "chosen_chain_id": ["c0"] * n, "rejected_chain_id": ["c1"] * n, "kind": ["first_error"] * n, "method": ["mc"] * n,
    })


PREFERENCE_STATS = {
    "samples": {"samples": 8, "prompts": 4, "correct": 4, "accuracy": 0.5, "pass_at_n": 1.0, "mean_tokens": 9.0,
                "finish_reason": {"stop": 8}, "verify_error": {}, "engine_failures": 0,
                "judge": {"judged": 8, "mean_score": 7.5, "parse_errors": {}}},
    "pairs": {"pairs": 4, "candidates": 7, "dropped": {"swap_inconsistent": 2, "no_incorrect_sample": 1},
              "chosen_source": {"sample": 4}, "strategy": {"verified_vs_incorrect": 3, "rise": 1},
              "difficulty": {"medium": 4},
              "separability": {"margin_histogram": {"[0.9, inf)": 3, "[0.8, 0.9)": 1}, "mean_margin": 0.9,
                               "same_model_share": 1.0, "length_diff_chars": {"mean": 0.0, "median": 0.0},
                               "chosen_longer_share": 0.0}},
    "votes": {"prompts": 4, "mean_vote_share": 0.5, "label_source": {"reference": 4}, "difficulty": {"medium": 4}},
    "rise": {"solutions": 4, "edits": 4, "kept": 3, "kept_share": 0.75, "dropped": {"admits_error": 1},
             "by_error_type": {"change_number": {"edits": 3, "kept": 2}, "swap_terms": {"edits": 1, "kept": 1}},
             "by_editor": {"rules": 3}, "mean_changed_share": 0.2, "pairs": 1, "over_ratio": 0},
}
PROCESS_STATS = {
    "steps": {"chains": 5, "dropped": {}, "labelled": 4, "published": 4, "unlabelled": 0, "steps": 8,
              "positive_steps": 6, "negative_steps": 2, "chains_with_error": 2, "first_error_step": {"1": 2},
              "rollout_tokens": 320},
    "step_pairs": {"questions": 4, "pairs": 3, "pairs_first_error": 3, "pairs_contrast": 0},
}


def _recipe(flow: str, source: str = "/data/shared/gsm8k/train.jsonl") -> dict:
    return {"dataset": "x", "flow": flow, "source": {"path": source, "split": "train", "offset": 0, "limit": 4},
            "engine": {"kind": "scripted", "model": "default"},
            "generate": {"n": 2, "temperature": 0.8, "top_p": 0.95, "max_tokens": 256, "seed": 7},
            "pairs": {"strategy": "verified_vs_incorrect", "judge_weight": 0.3},
            "judge": {"pointwise": True, "pairwise": True, "samples": 2},
            "rise": {"enabled": flow == "preference", "editor": "rules"},
            "process": {"method": "mc", "rollouts": 4, "split": "newline"}}


@pytest.fixture
def store(tmp_path) -> Path:
    root = tmp_path / "store"
    publish_version(root, "pref", {"samples": _samples(8), "pairs": _pairs(4), "votes": _votes(4), "rise_steps": _rise_steps(3)},
                    config=_recipe("preference"), info={"engine": "scripted:t", "stats": PREFERENCE_STATS})
    publish_version(root, "prm", {"steps": _steps(4), "step_pairs": _step_pairs(3)},
                    config=_recipe("process", source="openai/gsm8k"), info={"engine": "scripted:t", "stats": PROCESS_STATS})
    publish_version(root, "other", {"pairs": _pairs(2)}, config=_recipe("preference", source="/data/mine/prompts.jsonl"),
                    info={"engine": "scripted:t", "stats": {}})
    return root


# --- a recorded HfApi ---


@dataclass
class Ref:
    name: str
    ref: str
    target_commit: str


@dataclass
class Refs:
    tags: list
    branches: list
    converts: list
    pull_requests: list | None = None


@dataclass
class Commit:
    commit_id: str
    title: str
    message: str


@dataclass
class Info:
    oid: str
    commit_url: str
    commit_message: str
    commit_description: str


class RecordingApi:
    """The HfApi methods prefmill calls, same signatures, with an in-memory repository."""

    def __init__(self):
        self.calls: list[tuple[str, tuple, dict]] = []
        self.files: dict[str, bytes] = {".gitattributes": b"*.parquet filter=lfs\n"}
        self.commits: list[Commit] = []
        self.tags: dict[str, str] = {}
        self.repos: set[str] = set()
        self.operations: list = []

    def create_repo(self, repo_id, *, token=None, private=None, visibility=None, repo_type=None, exist_ok=False, **kwargs):
        self.calls.append(("create_repo", (repo_id,), {"private": private, "repo_type": repo_type, "exist_ok": exist_ok}))
        self.repos.add(repo_id)
        return f"https://huggingface.co/datasets/{repo_id}"

    def list_repo_refs(self, repo_id, *, repo_type=None, include_pull_requests=False, token=None):
        self.calls.append(("list_repo_refs", (repo_id,), {"repo_type": repo_type}))
        return Refs(tags=[Ref(t, f"refs/tags/{t}", c) for t, c in self.tags.items()], branches=[], converts=[])

    def list_repo_commits(self, repo_id, *, repo_type=None, token=None, revision=None, formatted=False):
        self.calls.append(("list_repo_commits", (repo_id,), {"repo_type": repo_type, "revision": revision}))
        index = next(i for i, c in enumerate(self.commits) if c.commit_id == revision)
        return list(reversed(self.commits[: index + 1]))

    def list_repo_files(self, repo_id, *, revision=None, repo_type=None, token=None):
        self.calls.append(("list_repo_files", (repo_id,), {"repo_type": repo_type}))
        return sorted(self.files)

    def create_commit(self, repo_id, operations, *, commit_message, commit_description=None, token=None, repo_type=None,
                      revision=None, create_pr=None, num_threads=5, parent_commit=None, run_as_future=False):
        operations = list(operations)
        self.calls.append(("create_commit", (repo_id,), {"commit_message": commit_message, "repo_type": repo_type}))
        self.operations.append(operations)
        for op in operations:
            if type(op).__name__ == "CommitOperationDelete":
                self.files.pop(op.path_in_repo)
                continue
            src = op.path_or_fileobj
            self.files[op.path_in_repo] = Path(src).read_bytes() if isinstance(src, (str, Path)) else bytes(src)
        oid = hashlib.sha1(f"{len(self.commits)}{commit_message}".encode()).hexdigest()
        self.commits.append(Commit(oid, commit_message, commit_description or ""))
        return Info(oid, f"https://huggingface.co/datasets/{repo_id}/commit/{oid}", commit_message, commit_description or "")

    def create_tag(self, repo_id, *, tag, tag_message=None, revision=None, token=None, repo_type=None, exist_ok=False):
        self.calls.append(("create_tag", (repo_id,), {"tag": tag, "revision": revision, "repo_type": repo_type}))
        assert tag not in self.tags
        self.tags[tag] = revision

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def _version_files(root: Path, dataset: str, version: str = "v0001") -> dict[str, bytes]:
    folder = root / dataset / version
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in (folder / "data").rglob("*.parquet")}


# --- the Hub ---


class TestHub:
    def test_one_commit_with_every_config_the_card_and_a_tag(self, store):
        api = RecordingApi()
        result = publish(store, "pref", None, repo="me/pref", private=True, api=api)

        assert isinstance(result, PublishResult) and result.created and result.kind == "hub"
        assert api.names() == ["create_repo", "list_repo_refs", "list_repo_files", "create_commit", "create_tag"]
        assert api.calls[0] == ("create_repo", ("me/pref",), {"private": True, "repo_type": "dataset", "exist_ok": True})
        assert all(c[2].get("repo_type") == "dataset" for c in api.calls)
        [ops] = api.operations
        expected = _version_files(store, "pref")
        assert sorted(expected) == sorted(f"data/{c}/train-00000-of-00001.parquet" for c in ("samples", "pairs", "votes", "rise_steps"))
        assert {op.path_in_repo for op in ops} == {*expected, "README.md", *result.plots}
        for rel, content in expected.items():
            assert api.files[rel] == content
        card = api.files["README.md"].decode()
        assert card == render_card(store, "pref", "v0001", repo="me/pref", plots=list(result.plots))
        manifest_hash = card_marker(card)[2]
        commit = api.commits[0]
        assert commit.title == "prefmill: publish pref v0001"
        assert f"prefmill content_hash: {manifest_hash}" in commit.message
        assert api.tags == {"v0001": commit.commit_id} == {result.tag: result.commit}
        assert api.calls[-1][2] == {"tag": "v0001", "revision": commit.commit_id, "repo_type": "dataset"}

    def test_second_publish_of_the_same_version_is_a_no_op(self, store):
        api = RecordingApi()
        first = publish(store, "pref", "v0001", repo="me/pref", api=api)
        api.calls.clear()

        second = publish(store, "pref", "1", repo="me/pref", api=api)

        assert not second.created and second.commit == first.commit and second.tag == "v0001"
        assert "already published" in second.message and "nothing to do" in second.message
        assert "create_commit" not in api.names() and "create_tag" not in api.names()
        assert len(api.commits) == 1

    def test_a_tag_holding_other_content_is_refused(self, store):
        api = RecordingApi()
        publish(store, "pref", None, repo="me/pref", api=api)
        api.commits[0].message = "prefmill content_hash: " + "0" * 64

        with pytest.raises(StoreError, match="tag v0001 already exists and holds other content"):
            publish(store, "pref", None, repo="me/pref", api=api)
        assert len(api.commits) == 1

    def test_next_version_deletes_files_of_configs_it_does_not_have(self, store):
        api = RecordingApi()
        publish(store, "pref", None, repo="me/pref", api=api)
        publish_version(store, "pref", {"pairs": _pairs(3)}, config=_recipe("preference"), info={"stats": {}})

        result = publish(store, "pref", None, repo="me/pref", api=api)

        assert result.created and result.version == "v0002"
        deleted = {op.path_in_repo for op in api.operations[1] if type(op).__name__ == "CommitOperationDelete"}
        assert deleted == {f"data/{c}/train-00000-of-00001.parquet" for c in ("samples", "votes", "rise_steps")}
        assert sorted(p for p in api.files if p.startswith("data/")) == ["data/pairs/train-00000-of-00001.parquet"]
        assert set(api.tags) == {"v0001", "v0002"}

    @pytest.mark.parametrize("method", ["create_repo", "list_repo_refs", "create_commit", "create_tag"])
    def test_client_errors_become_store_errors_without_the_token(self, store, monkeypatch, method):
        monkeypatch.setenv("HF_TOKEN", TOKEN)

        class Failing(RecordingApi):
            pass

        def fail(self, *args, **kwargs):
            raise RuntimeError(f"401 Client Error for url https://huggingface.co/api (token={TOKEN}, "
                               f"headers={{'authorization': 'Bearer {TOKEN}'}}) other hf_AnotherLongToken99")

        setattr(Failing, method, fail)
        with pytest.raises(StoreError) as info:
            publish(store, "pref", None, repo="me/pref", api=Failing())

        text = f"{info.value}\n{info.value.message}\n{info.value.hint}\n{info.value!r}"
        assert TOKEN not in text and "hf_AnotherLongToken99" not in text
        assert "401 Client Error" in text and "hf auth login" in info.value.hint
        assert info.value.__cause__ is None and info.value.__suppress_context__

    def test_redact_removes_the_token_even_when_it_is_not_shaped_like_one(self, monkeypatch):
        monkeypatch.setenv("HF_TOKEN", "plain-secret-value")
        assert redact("bad credentials plain-secret-value and hf_abcdefgh123") == "bad credentials *** and hf_***"

    def test_a_damaged_file_is_never_published(self, store):
        path = store / "pref" / "v0001" / "data" / "pairs" / "train-00000-of-00001.parquet"
        path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
        api = RecordingApi()

        with pytest.raises(StoreError, match="does not match its manifest"):
            publish(store, "pref", None, repo="me/pref", api=api)
        assert api.calls == []

    def test_offline_hub_is_a_store_error(self, store, monkeypatch):
        """The real HfApi under HF_HUB_OFFLINE=1 (conftest): no request leaves, the error says why."""
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        from huggingface_hub import constants

        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
        with pytest.raises(StoreError, match="me/pref: cannot create the repository on the Hub: OfflineModeIsEnabled"):
            publish(store, "pref", None, repo="me/pref")


# --- a local folder ---


def _load(folder: Path, config: str, cache: Path):
    import datasets

    return datasets.load_dataset(str(folder), config, split="train", cache_dir=str(cache))


class TestFolder:
    @pytest.mark.parametrize("dataset", ["pref", "prm"])
    def test_load_dataset_gives_the_same_rows_for_every_config(self, store, tmp_path, dataset):
        out = tmp_path / "out" / dataset
        result = publish(store, dataset, None, repo=str(out))

        assert result.created and result.kind == "folder"
        expected = _version_files(store, dataset)
        assert sorted(expected) == sorted(p.relative_to(out).as_posix() for p in (out / "data").rglob("*.parquet"))
        for rel in expected:
            config = rel.split("/")[1]
            rows = _load(out, config, tmp_path / "cache").to_list()
            assert rows == pq.read_table(io.BytesIO(expected[rel])).to_pylist(), config
        assert (out / "README.md").read_text() == render_card(store, dataset, None, repo=str(out), plots=list(result.plots))

    def test_file_url_and_second_publish_is_a_no_op(self, store, tmp_path):
        out = tmp_path / "folder"
        first = publish(store, "pref", None, repo=out.as_uri())
        before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}

        second = publish(store, "pref", None, repo=out.as_uri())

        assert first.created and not second.created and "already published" in second.message
        assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before

    def test_a_new_version_replaces_the_folder_content(self, store, tmp_path):
        out = tmp_path / "folder"
        publish(store, "pref", None, repo=str(out))
        publish_version(store, "pref", {"pairs": _pairs(3)}, config=_recipe("preference"), info={"stats": {}})

        result = publish(store, "pref", None, repo=str(out))

        assert result.created and result.version == "v0002"
        assert [p.relative_to(out).as_posix() for p in sorted((out / "data").rglob("*")) if p.is_file()] == [
            "data/pairs/train-00000-of-00001.parquet"]
        assert len(_load(out, "pairs", tmp_path / "cache")) == 3

    def test_a_foreign_folder_is_refused(self, store, tmp_path):
        out = tmp_path / "mine"
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        with pytest.raises(StoreError, match="holds no dataset card written by prefmill"):
            publish(store, "pref", None, repo=str(out))
        assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]

    def test_repo_kinds(self, tmp_path):
        assert local_target("me/pref") is None
        assert local_target("./me/pref") == Path("./me/pref")
        assert local_target("out") == Path("out")
        assert local_target(f"file://{tmp_path}") == tmp_path
        with pytest.raises(StoreError, match="only local file:// URLs"):
            local_target("file://elsewhere/x")


# --- the card ---


class TestCard:
    def test_front_matter_parses_and_lists_every_config(self, store):
        for dataset, configs in (("pref", ["samples", "pairs", "votes", "rise_steps"]), ("prm", ["steps", "step_pairs"])):
            meta = front_matter(render_card(store, dataset, None))
            assert [c["config_name"] for c in meta["configs"]] == configs
            for c in meta["configs"]:
                assert c["data_files"] == [{"split": "train", "path": f"data/{c['config_name']}/train-*.parquet"}]
            assert sum(bool(c.get("default")) for c in meta["configs"]) == 1
            assert meta["license"] == "mit"  # GSM8K, a local file or the Hub id
            assert "prefmill" in meta["tags"] and meta["task_categories"][0] == "text-generation"
        assert yaml.safe_load(render_card(store, "other", None).split("---\n")[1])["license"] == "other"

    def test_preference_body(self, store):
        card = render_card(store, "pref", None, repo="me/pref")
        for text in (
            "`preference` flow", "the local file `gsm8k/train.jsonl`", "scripted:t", "| `pairs` | 4 |", "| `samples` | 8 |",
            "accuracy (share verified correct) 50.0%", "pass@n 100.0%", "| `swap_inconsistent` | 2 |",
            "| `[0.8, 0.9)` | 1 |", "| `change_number` | 3 | 2 |", "swap consistency", "3 of 5 candidates",
            "strategy=verified_vs_incorrect", "from trl import DPOConfig, DPOTrainer",
            'load_dataset("me/pref", "pairs", split="train", revision="v0001")',
        ):
            assert text in card, text
        assert "/data/shared" not in card  # the local folders around the source are not published
        assert card.index("[0.8, 0.9)") < card.index("[0.9, inf)")

    def test_process_body(self, store):
        card = render_card(store, "prm", None)
        for text in ("the Hub dataset `openai/gsm8k`", "label balance 75.0% positive", "| `1` | 2 |",
                     "PRMTrainer", "method=mc", 'load_dataset("<user>/prm", "steps"'):
            assert text in card, text

    def test_unknown_version(self, store):
        with pytest.raises(StoreError, match="no version 'v0009'"):
            render_card(store, "pref", "v0009")


def test_the_cli_publishes_to_a_folder_and_previews_the_card(store, tmp_path):
    from typer.testing import CliRunner

    from prefmill.cli import app

    runner, out = CliRunner(), tmp_path / "published"
    first = runner.invoke(app, ["publish", "pref", "--repo", str(out), "--store", str(store)])
    again = runner.invoke(app, ["publish", "pref", "v0001", "--repo", str(out), "--store", str(store)])
    card = runner.invoke(app, ["card", "pref", "--store", str(store)])
    assert first.exit_code == again.exit_code == card.exit_code == 0, first.output + again.output + card.output
    assert (out / "data" / "pairs" / "train-00000-of-00001.parquet").is_file() and (out / "README.md").is_file()
    assert "nothing to do" in again.output.lower() or "already" in again.output.lower()
    assert card.output.startswith("---") and "configs:" in card.output
    missing = runner.invoke(app, ["publish", "nope", "--repo", str(out), "--store", str(store)])
    assert missing.exit_code == 2 and "Traceback" not in missing.output
