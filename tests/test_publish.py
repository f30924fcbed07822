"""prefmill/hub.py: publishing a version to the Hub (a recorded fake HfApi, never the network) or to a
local folder, cut into train/test splits by prompt. The card is tests/test_card.py's, the split rule
tests/test_splits.py's."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from prefmill.card import card_marker, render_card
from prefmill.errors import StoreError
from prefmill.hub import PublishResult, local_target, publish, redact
from prefmill.splits import Splits, held_out
from prefmill.store import publish_version
from tests.publish_helpers import TOKEN, RecordingApi, _pairs, _recipe, _version_files, make_store

CONFIGS = ("samples", "pairs", "votes", "rise_steps")
"""The configs of `pref`; with the default test size 0.1 prompt p0 (and only p0 of p0..p3) is in `test`."""


@pytest.fixture
def store(tmp_path) -> Path:
    return make_store(tmp_path / "store")


def _split_files(configs, names=("train", "test")) -> set[str]:
    return {f"data/{c}/{s}-00000-of-00001.parquet" for c in configs for s in names}


def _rows(data: bytes | Path) -> list[dict]:
    table = pq.read_table(io.BytesIO(data) if isinstance(data, bytes) else data)
    return table.to_pylist()


def _sorted(rows: list[dict]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)


# --- the Hub ---


class TestHub:
    def test_one_commit_with_every_config_split_the_card_and_a_tag(self, store):
        api = RecordingApi()
        result = publish(store, "pref", None, repo="me/pref", private=True, api=api)

        assert isinstance(result, PublishResult) and result.created and result.kind == "hub"
        assert api.names() == ["create_repo", "list_repo_refs", "list_repo_files", "create_commit", "create_tag"]
        assert api.calls[0] == ("create_repo", ("me/pref",), {"private": True, "repo_type": "dataset", "exist_ok": True})
        assert all(c[2].get("repo_type") == "dataset" for c in api.calls)
        [ops] = api.operations
        assert {op.path_in_repo for op in ops} == {*_split_files(CONFIGS), "README.md", *result.plots}
        stored = _version_files(store, "pref")
        for config in CONFIGS:
            train = _rows(api.files[f"data/{config}/train-00000-of-00001.parquet"])
            test = _rows(api.files[f"data/{config}/test-00000-of-00001.parquet"])
            assert {r["prompt_id"] for r in test} == {"p0"} and "p0" not in {r["prompt_id"] for r in train}, config
            assert _sorted(train + test) == _sorted(_rows(stored[f"data/{config}/train-00000-of-00001.parquet"])), config
            assert result.split_rows[config] == {"train": len(train), "test": len(test)}
        assert "(rows: train 14, test 5)" in result.message
        card = api.files["README.md"].decode()
        assert card == render_card(store, "pref", "v0001", repo="me/pref")
        manifest_hash = card_marker(card)[2]
        commit = api.commits[0]
        assert commit.title == "prefmill: publish pref v0001"
        assert f"prefmill content_hash: {manifest_hash}" in commit.message
        assert "prefmill splits: splits=train,test test_size=0.1" in commit.message
        assert api.tags == {"v0001": commit.commit_id} == {result.tag: result.commit}
        assert api.calls[-1][2] == {"tag": "v0001", "revision": commit.commit_id, "repo_type": "dataset"}

    def test_test_size_zero_publishes_the_stored_files_as_train(self, store):
        api = RecordingApi()
        result = publish(store, "pref", None, repo="me/pref", splits=Splits(0, ("train_prefs", "test_prefs")), api=api)

        stored = _version_files(store, "pref")
        assert sorted(p for p in api.files if p.startswith("data/")) == sorted(_split_files(CONFIGS, ["train_prefs"]))
        for rel, content in stored.items():
            assert api.files[rel.replace("/train-", "/train_prefs-")] == content  # the same bytes, not rewritten
        assert result.split_rows["samples"] == {"train_prefs": 8, "test_prefs": 0}
        assert "prefmill splits: splits=train_prefs test_size=0.0" in api.commits[0].message

    def test_second_publish_of_the_same_version_is_a_no_op(self, store):
        api = RecordingApi()
        first = publish(store, "pref", "v0001", repo="me/pref", api=api)
        api.calls.clear()

        second = publish(store, "pref", "1", repo="me/pref", api=api)

        assert not second.created and second.commit == first.commit and second.tag == "v0001"
        assert "already published" in second.message and "nothing to do" in second.message
        assert "create_commit" not in api.names() and "create_tag" not in api.names()
        assert len(api.commits) == 1

    def test_other_split_settings_are_a_new_commit_and_the_tag_moves_to_it(self, store):
        api = RecordingApi()
        first = publish(store, "pref", None, repo="me/pref", api=api)
        api.calls.clear()

        again = publish(store, "pref", None, repo="me/pref", splits=Splits(0.1, ("train_prefs", "test_prefs")), api=api)

        assert again.created and again.resplit and again.commit != first.commit and "tag v0001 moved" in again.message
        assert api.names() == ["create_repo", "list_repo_refs", "list_repo_commits", "list_repo_files", "create_commit",
                               "delete_tag", "create_tag"]
        assert api.tags == {"v0001": again.commit}
        assert sorted(p for p in api.files if p.startswith("data/")) == sorted(
            _split_files(CONFIGS, ("train_prefs", "test_prefs")))
        assert 'ds["train_prefs"], eval_dataset=ds["test_prefs"]' in api.files["README.md"].decode()
        third = publish(store, "pref", None, repo="me/pref", splits=Splits(0.1, ("train_prefs", "test_prefs")), api=api)
        assert not third.created and len(api.commits) == 2

    def test_resplitting_a_version_main_has_moved_past_is_refused(self, store):
        api = RecordingApi()
        publish(store, "pref", "v0001", repo="me/pref", api=api)
        publish_version(store, "pref", {"pairs": _pairs(3)}, config=_recipe("preference"), info={"stats": {}})
        publish(store, "pref", "v0002", repo="me/pref", api=api)

        with pytest.raises(StoreError, match="main has moved past it"):
            publish(store, "pref", "v0001", repo="me/pref", splits=Splits(0.2), api=api)
        assert len(api.commits) == 2 and api.tags["v0001"] == api.commits[0].commit_id

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
        plots = {"plots/margin_histogram.png", "plots/pair_drops.png", "plots/rise_error_types.png"}  # v0002: no stats
        assert deleted == _split_files(("samples", "votes", "rise_steps")) | plots
        assert sorted(p for p in api.files if p.startswith(("data/", "plots/"))) == sorted(_split_files(["pairs"]))
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


def _load(folder: Path, config: str, cache: Path, split: str | None = None):
    import datasets

    return datasets.load_dataset(str(folder), config, split=split, cache_dir=str(cache))


class TestFolder:
    @pytest.mark.parametrize(("dataset", "names"), [("pref", ("train", "test")), ("prm", ("train_prefs", "test_prefs"))])
    def test_load_dataset_gives_both_splits_and_together_the_stored_rows(self, store, tmp_path, dataset, names):
        out = tmp_path / "out" / dataset
        result = publish(store, dataset, None, repo=str(out), splits=Splits(0.1, names))

        assert result.created and result.kind == "folder"
        stored = _version_files(store, dataset)
        configs = [rel.split("/")[1] for rel in stored]
        assert {p.relative_to(out).as_posix() for p in (out / "data").rglob("*.parquet")} == _split_files(configs, names)
        for rel, content in stored.items():
            config = rel.split("/")[1]
            loaded = _load(out, config, tmp_path / "cache")
            assert sorted(loaded) == sorted(names), config
            train, test = (loaded[n].to_list() for n in names)
            assert {r["prompt_id"] for r in test}.isdisjoint(r["prompt_id"] for r in train)
            assert all(held_out(r["prompt_id"], 0.1) for r in test) and not any(held_out(r["prompt_id"], 0.1) for r in train)
            assert _sorted(train + test) == _sorted(_rows(content)), config
        assert (out / "README.md").read_text() == render_card(store, dataset, None, repo=str(out), splits=Splits(0.1, names))

    def test_an_empty_split_is_not_published_and_the_card_says_so(self, store, tmp_path):
        out = tmp_path / "out"
        publish(store, "pref", None, repo=str(out), splits=Splits(0.05))  # p0..p3 are all above 0.05

        assert {p.relative_to(out).as_posix() for p in (out / "data").rglob("*.parquet")} == _split_files(CONFIGS, ["train"])
        assert sorted(_load(out, "pairs", tmp_path / "cache")) == ["train"]
        assert "Empty, so not published: `test` of `samples`" in (out / "README.md").read_text()

    def test_file_url_and_second_publish_is_a_no_op(self, store, tmp_path):
        out = tmp_path / "folder"
        first = publish(store, "pref", None, repo=out.as_uri())
        before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}

        second = publish(store, "pref", None, repo=out.as_uri())

        assert first.created and not second.created and "already published" in second.message
        assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
        third = publish(store, "pref", None, repo=out.as_uri(), splits=Splits(0))
        assert third.created and sorted(p.name for p in (out / "data" / "pairs").iterdir()) == ["train-00000-of-00001.parquet"]

    def test_a_new_version_replaces_the_folder_content(self, store, tmp_path):
        out = tmp_path / "folder"
        publish(store, "pref", None, repo=str(out))
        publish_version(store, "pref", {"pairs": _pairs(3)}, config=_recipe("preference"), info={"stats": {}})

        result = publish(store, "pref", None, repo=str(out))

        assert result.created and result.version == "v0002"
        assert [p.relative_to(out).as_posix() for p in sorted((out / "data").rglob("*")) if p.is_file()] == [
            "data/pairs/test-00000-of-00001.parquet", "data/pairs/train-00000-of-00001.parquet"]
        assert {k: len(v) for k, v in _load(out, "pairs", tmp_path / "cache").items()} == {"train": 2, "test": 1}

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


# --- the CLI ---


def test_the_cli_publishes_to_a_folder_and_previews_the_card(store, tmp_path):
    from typer.testing import CliRunner

    from prefmill.cli import app

    runner, out = CliRunner(), tmp_path / "published"
    first = runner.invoke(app, ["publish", "pref", "--repo", str(out), "--store", str(store)])
    again = runner.invoke(app, ["publish", "pref", "v0001", "--repo", str(out), "--store", str(store)])
    card = runner.invoke(app, ["card", "pref", "--store", str(store)])
    assert first.exit_code == again.exit_code == card.exit_code == 0, first.output + again.output + card.output
    assert (out / "data" / "pairs" / "train-00000-of-00001.parquet").is_file() and (out / "README.md").is_file()
    assert (out / "data" / "pairs" / "test-00000-of-00001.parquet").is_file()
    assert "nothing to do" in again.output.lower() or "already" in again.output.lower()
    assert card.output.startswith("---") and "configs:" in card.output
    options = ["--test-size", "0.5", "--splits", "train_prefs,test_prefs", "--store", str(store)]
    split = runner.invoke(app, ["publish", "pref", "--repo", str(out), *options])
    preview = runner.invoke(app, ["card", "pref", *options])
    assert split.exit_code == preview.exit_code == 0, split.output + preview.output
    assert "train_prefs" in split.output and sorted(p.name for p in (out / "data" / "pairs").iterdir()) == [
        "test_prefs-00000-of-00001.parquet", "train_prefs-00000-of-00001.parquet"]
    assert preview.output == render_card(store, "pref", None, splits=Splits(0.5, ("train_prefs", "test_prefs")))
    missing = runner.invoke(app, ["publish", "nope", "--repo", str(out), "--store", str(store)])
    assert missing.exit_code == 2 and "Traceback" not in missing.output
