"""prefmill/store.py: versions appear atomically, dedupe on content, and survive racing writers."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import prefmill.store as store
import prefmill.store_checks as store_checks
from prefmill.errors import StoreError
from prefmill.store import datasets_in, file_sha256, publish_version, read_manifest, version_names

SAMPLES_FILE = "data/samples/train-00000-of-00001.parquet"
PAIRS_FILE = "data/pairs/train-00000-of-00001.parquet"


def _tables(seed: int = 0) -> dict[str, pa.Table]:
    return {"samples": pa.table({"a": [seed, seed + 1, seed + 2]}), "pairs": pa.table({"b": ["x"]})}


class TestPublishVersion:
    def test_first_version_and_manifest(self, tmp_path):
        v = publish_version(tmp_path, "ds", _tables(), config={"n": 4}, info={"engine": "scripted:x"})

        assert (v.dataset, v.name, v.path, v.created) == ("ds", "v0001", tmp_path / "ds" / "v0001", True)
        manifest = json.loads((v.path / "manifest.json").read_text())
        assert manifest == v.manifest
        assert (manifest["dataset"], manifest["version"], manifest["parent"]) == ("ds", "v0001", None)
        assert manifest["config"] == {"n": 4} and manifest["engine"] == "scripted:x"
        created = dt.datetime.fromisoformat(manifest["created_at"])
        assert created.utcoffset() == dt.timedelta(0)
        assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 60
        assert len(manifest["content_hash"]) == 64
        assert set(manifest["files"]) == {SAMPLES_FILE, PAIRS_FILE}
        for rel, rows in ((SAMPLES_FILE, 3), (PAIRS_FILE, 1)):
            entry = manifest["files"][rel]
            assert entry["rows"] == rows
            assert entry["sha256"] == file_sha256(v.path / rel)
            assert entry["bytes"] == (v.path / rel).stat().st_size
        assert pq.read_table(v.path / SAMPLES_FILE).column("a").to_pylist() == [0, 1, 2]
        assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["v0001"]

    def test_identical_content_returns_the_existing_version(self, tmp_path):
        first = publish_version(tmp_path, "ds", _tables(), config={"n": 4})

        again = publish_version(tmp_path, "ds", _tables(), config={"n": 4})

        assert (again.name, again.created, again.manifest) == ("v0001", False, first.manifest)
        assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["v0001"]

    def test_different_content_is_the_next_version(self, tmp_path):
        first = publish_version(tmp_path, "ds", _tables(0), config={"n": 4})

        second = publish_version(tmp_path, "ds", _tables(10), config={"n": 4})

        assert (second.name, second.created, second.manifest["parent"]) == ("v0002", True, "v0001")
        assert second.manifest["content_hash"] != first.manifest["content_hash"]
        assert version_names(tmp_path, "ds") == ["v0001", "v0002"]

    def test_config_is_part_of_the_content(self, tmp_path):
        publish_version(tmp_path, "ds", _tables(), config={"n": 4})
        assert publish_version(tmp_path, "ds", _tables(), config={"n": 5}).name == "v0002"

    def test_dedupes_only_against_the_latest_version(self, tmp_path):
        publish_version(tmp_path, "ds", _tables(0), config={})
        publish_version(tmp_path, "ds", _tables(1), config={})
        third = publish_version(tmp_path, "ds", _tables(0), config={})
        assert (third.name, third.created, third.manifest["parent"]) == ("v0003", True, "v0002")

    def test_split_names_the_files(self, tmp_path):
        v = publish_version(tmp_path, "ds", {"samples": pa.table({"a": [1]})}, config={}, split="test")
        assert list(v.manifest["files"]) == ["data/samples/test-00000-of-00001.parquet"]

    def test_failed_write_leaves_no_version_and_no_staging(self, tmp_path, monkeypatch):
        real = pq.write_table
        written = []

        def write_then_fail(table, where, **kw):
            if written:
                raise OSError("disk full")
            written.append(where)
            real(table, where, **kw)

        monkeypatch.setattr(store.pq, "write_table", write_then_fail)

        with pytest.raises(StoreError) as info:
            publish_version(tmp_path, "ds", _tables(), config={})

        assert info.value.message == f"{tmp_path / 'ds'}: cannot publish a version: disk full"
        assert len(written) == 1  # one file had been written into staging before the failure
        assert list((tmp_path / "ds").iterdir()) == []
        assert version_names(tmp_path, "ds") == []

    def test_unwritable_table_object_leaves_nothing(self, tmp_path):
        class Broken:
            num_rows = 1

        with pytest.raises(AttributeError, match="schema"):
            publish_version(tmp_path, "ds", {"samples": pa.table({"a": [1]}), "pairs": Broken()}, config={})
        assert list((tmp_path / "ds").iterdir()) == []

    def test_interrupt_leaves_nothing(self, tmp_path, monkeypatch):
        def interrupted(*a, **kw):
            raise KeyboardInterrupt

        monkeypatch.setattr(store.pq, "write_table", interrupted)
        with pytest.raises(KeyboardInterrupt):
            publish_version(tmp_path, "ds", _tables(), config={})
        assert list((tmp_path / "ds").iterdir()) == []

    def test_writer_that_lost_the_number_takes_the_next(self, tmp_path, monkeypatch):
        publish_version(tmp_path, "ds", _tables(0), config={"w": 1})
        first_manifest = (tmp_path / "ds" / "v0001" / "manifest.json").read_text()
        real = store.version_names
        views = []

        def stale_first(root, dataset):
            # The first look predates the other writer's rename, as in a real race.
            views.append(1)
            return [] if len(views) == 1 else real(root, dataset)

        monkeypatch.setattr(store, "version_names", stale_first)

        v = publish_version(tmp_path, "ds", _tables(1), config={"w": 2})

        assert (v.name, v.created, v.manifest["parent"], v.manifest["version"]) == ("v0002", True, "v0001", "v0002")
        assert json.loads((v.path / "manifest.json").read_text()) == v.manifest
        assert (tmp_path / "ds" / "v0001" / "manifest.json").read_text() == first_manifest
        assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["v0001", "v0002"]

    def test_racing_threads_each_get_a_version(self, tmp_path):
        barrier = threading.Barrier(6)
        results, errors = [], []

        def publish(i):
            barrier.wait()
            try:
                results.append(publish_version(tmp_path, "ds", _tables(100 * i), config={"writer": i}))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=publish, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert errors == []
        assert sorted(v.name for v in results) == [f"v{i:04d}" for i in range(1, 7)]
        assert all(v.created for v in results)
        assert sorted(read_manifest(tmp_path, "ds", v.name)["config"]["writer"] for v in results) == list(range(6))
        parents = {read_manifest(tmp_path, "ds", f"v{i:04d}")["parent"] for i in range(1, 7)}
        assert parents == {None} | {f"v{i:04d}" for i in range(1, 6)}
        assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == [f"v{i:04d}" for i in range(1, 7)]
    def test_folder_without_manifest_does_not_spin(self, tmp_path, monkeypatch):
        (tmp_path / "ds" / "v0001").mkdir(parents=True)
        (tmp_path / "ds" / "v0001" / "leftover.txt").write_text("half-copied version")
        real_rename = store.os.rename
        attempts = []

        def counting_rename(src, dst):
            attempts.append(dst)
            if len(attempts) > 20:
                raise RuntimeError(f"publish_version still retrying after {len(attempts)} renames")
            return real_rename(src, dst)

        monkeypatch.setattr(store.os, "rename", counting_rename)

        try:
            v = publish_version(tmp_path, "ds", _tables(), config={})
        except StoreError:
            return  # refusing with a clear error is a fix too
        assert v.name != "v0001"


    def test_version_folder_follows_the_umask(self, tmp_path):
        v = publish_version(tmp_path, "ds", _tables(), config={})
        umask = os.umask(0o027)
        os.umask(umask)
        assert stat.S_IMODE(v.path.stat().st_mode) == 0o777 & ~umask  # 0755 under 022, not mkdtemp's 0700
        assert stat.S_IMODE((v.path / SAMPLES_FILE).stat().st_mode) == 0o666 & ~umask

    def test_stale_staging_is_removed_and_a_fresh_one_kept(self, tmp_path):
        folder = tmp_path / "ds"
        stale, fresh = folder / ".staging-killed", folder / ".staging-busy"
        for path in (stale, fresh):
            (path / "data" / "samples").mkdir(parents=True)
            (path / "data" / "samples" / "part.parquet").write_bytes(b"half")
        old = time.time() - 2 * 3600
        for path in (stale / "data" / "samples" / "part.parquet", stale / "data" / "samples", stale / "data", stale):
            os.utime(path, (old, old))
        # A writer two hours in, still writing: its newest file is fresh, so it is not stale.
        os.utime(fresh, (old, old))

        publish_version(tmp_path, "ds", _tables(), config={})

        assert sorted(p.name for p in folder.iterdir()) == [".staging-busy", "v0001"]

    def test_damaged_latest_manifest_does_not_stop_publishing(self, tmp_path):
        publish_version(tmp_path, "ds", _tables(), config={})
        (tmp_path / "ds" / "v0001" / "manifest.json").write_text("{not json")

        v = publish_version(tmp_path, "ds", _tables(), config={})

        assert (v.name, v.created) == ("v0002", True)
        assert (tmp_path / "ds" / "v0001" / "manifest.json").read_text() == "{not json"

    def test_dataset_path_is_a_file(self, tmp_path):
        (tmp_path / "ds").write_text("x")
        with pytest.raises(StoreError, match=r"ds: cannot publish a version: File exists"):
            publish_version(tmp_path, "ds", _tables(), config={})
        assert (tmp_path / "ds").read_text() == "x"


class TestCheckWritable:
    def test_a_missing_store_is_created(self, tmp_path):
        store.check_writable(tmp_path / "new" / "store", "ds")
        assert (tmp_path / "new" / "store").is_dir()
        assert list((tmp_path / "new" / "store").iterdir()) == []  # the probe file is gone

    @pytest.mark.parametrize(("file", "message"), [
        ("store", "{root}: the store is a file, not a folder"),
        ("store/ds", "{root}/ds: is a file, not a dataset folder"),
        ("store/.cache", "{root}/.cache: is a file, not a folder"),
    ])
    def test_files_where_folders_belong(self, tmp_path, file, message):
        root = tmp_path / "store"
        root.mkdir()
        if file == "store":
            root.rmdir()
        (tmp_path / file).write_text("x")
        with pytest.raises(StoreError) as info:
            store.check_writable(root, "ds")
        assert info.value.message == message.format(root=root)

    def test_a_file_above_the_store(self, tmp_path):
        (tmp_path / "plain").write_text("x")
        with pytest.raises(StoreError) as info:
            store.check_writable(tmp_path / "plain" / "store", "ds")
        assert info.value.message == f"{tmp_path / 'plain' / 'store'}: cannot create the store: {tmp_path / 'plain'} is a file, not a folder"
        assert not (tmp_path / "plain").is_dir()

    def test_unwritable_folder(self, tmp_path, monkeypatch):
        import errno

        def refused(*a, dir=None, **kw):
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))

        (tmp_path / "ds").mkdir()
        monkeypatch.setattr(store_checks.tempfile, "mkstemp", refused)
        with pytest.raises(StoreError) as info:
            store.check_writable(tmp_path, "ds")
        assert info.value.message == f"{tmp_path}: cannot write to the store: Permission denied"


class TestDatasetNames:
    @pytest.mark.parametrize("name", ["../x", "..", ".", "a/b", ".cache", "", "-x", "x\n"])
    def test_refused(self, tmp_path, name):
        with pytest.raises(StoreError, match="is not valid"):
            read_manifest(tmp_path, name)

    def test_missing_manifests(self, tmp_path):
        publish_version(tmp_path, "ds", _tables(0), config={})
        publish_version(tmp_path, "ds", _tables(1), config={})
        (tmp_path / "ds" / "v0001" / "manifest.json").unlink()
        assert store.missing_manifests(tmp_path, "ds") == [tmp_path / "ds" / "v0001"]
        assert version_names(tmp_path, "ds") == ["v0002"]


class TestReadManifest:
    @pytest.mark.parametrize(("text", "message"), [
        ("{", "not valid JSON (Expecting property name enclosed in double quotes at line 1)"),
        ("[1]", "expected a JSON object, got list"),
    ])
    def test_damaged_manifest(self, tmp_path, text, message):
        publish_version(tmp_path, "ds", _tables(0), config={})
        path = tmp_path / "ds" / "v0001" / "manifest.json"
        path.write_text(text)
        with pytest.raises(StoreError) as info:
            read_manifest(tmp_path, "ds")
        assert info.value.message == f"{path}: {message}"

    def test_unknown_fields_of_a_newer_prefmill_are_kept(self, tmp_path):
        publish_version(tmp_path, "ds", _tables(0), config={})
        path = tmp_path / "ds" / "v0001" / "manifest.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "format": 9}))
        assert read_manifest(tmp_path, "ds")["format"] == 9

    def test_latest_and_by_name_or_number(self, tmp_path):
        publish_version(tmp_path, "ds", _tables(0), config={})
        publish_version(tmp_path, "ds", _tables(1), config={})
        assert read_manifest(tmp_path, "ds")["version"] == "v0002"
        assert read_manifest(tmp_path, "ds", "v0001")["version"] == "v0001"
        assert read_manifest(tmp_path, "ds", "1")["version"] == "v0001"

    def test_unknown_dataset(self, tmp_path):
        with pytest.raises(StoreError) as info:
            read_manifest(tmp_path, "nope")
        assert info.value.message == f"{tmp_path / 'nope'}: no versions of dataset 'nope'"
        assert info.value.hint == "run `prefmill run CONFIG` first"

    def test_unknown_version(self, tmp_path):
        publish_version(tmp_path, "ds", _tables(0), config={})
        with pytest.raises(StoreError) as info:
            read_manifest(tmp_path, "ds", "v0007")
        assert info.value.message == f"{tmp_path / 'ds'}: no version 'v0007'; versions are v0001"


class TestVersionNames:
    def test_numeric_order_and_only_published(self, tmp_path):
        folder = tmp_path / "ds"
        for name in ("v0002", "v0010", "v0001"):
            (folder / name).mkdir(parents=True)
            (folder / name / "manifest.json").write_text("{}")
        (folder / "v0003").mkdir()  # no manifest
        (folder / ".staging-abc").mkdir()
        (folder / "v12").mkdir()
        (folder / "v12" / "manifest.json").write_text("{}")
        assert version_names(tmp_path, "ds") == ["v0001", "v0002", "v0010"]
        assert version_names(tmp_path, "other") == []


class TestDatasetsIn:
    def test_lists_published_datasets(self, tmp_path):
        publish_version(tmp_path, "b", _tables(), config={})
        publish_version(tmp_path, "a", _tables(), config={})
        (tmp_path / "empty").mkdir()
        (tmp_path / ".cache" / "v0001").mkdir(parents=True)
        assert datasets_in(tmp_path) == ["a", "b"]
        assert datasets_in(tmp_path / "missing") == []
