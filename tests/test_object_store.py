"""Stores on object storage (prefmill/store_location.py, prefmill/object_store.py): the local store's
guarantees on a real S3-compatible server (moto on 127.0.0.1), `memory://` where cheaper. Writers
stage, claim a number create-only and write the manifest last: racing writers (threads, processes)
get distinct versions whose files are their own, a polling reader never sees a version without its
files, a killed writer is invisible, and no credential ever shows."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from prefmill.cli import app
from prefmill.errors import StoreError
from prefmill.object_store import remove_stale_staging
from prefmill.store import missing_manifests, publish_version, read_manifest, version_names
from prefmill.store_location import Location, open_store
from tests.object_store_worker import writer_tables

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "prefmill-test"
SECRET = f"dummy-secret-{uuid.uuid4().hex}"  # grepped for in everything a run writes
TOKEN = f"dummy-session-token-{uuid.uuid4().hex}"
runner = CliRunner()


@pytest.fixture(scope="session")
def s3():
    """One moto S3 server for the session, dummy credentials and its endpoint in the environment."""
    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {"AWS_ACCESS_KEY_ID": "AKIAPREFMILLTEST", "AWS_SECRET_ACCESS_KEY": SECRET,
                            "AWS_SESSION_TOKEN": TOKEN, "AWS_DEFAULT_REGION": "us-east-1",
                            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}.items():
            mp.setenv(name, value)
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield
    server.stop()


@pytest.fixture
def url(s3) -> str:
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"


def _check(root: Location, name: str) -> int:
    """The version's files are those its manifest lists (size, sha256), all of one writer's; the writer."""
    manifest = read_manifest(root, "ds", name)
    writers = set()
    for rel, info in manifest["files"].items():
        data = (root / "ds" / name / rel).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (info["bytes"], info["sha256"]), f"{name}/{rel}"
        writers |= set(pq.read_table(io.BytesIO(data)).column("writer").to_pylist())
    assert writers == {manifest["config"]["writer"]}, f"{name}: files of writers {writers}"
    return manifest["config"]["writer"]


def _objects(url: str) -> dict[str, bytes]:
    root = open_store(url)
    return {rel: (root / rel).read_bytes() for rel in root.files()}


def test_publish_read_back_and_identical_content_is_a_no_op(url, monkeypatch):
    root = open_store(url)
    first = publish_version(root, "ds", writer_tables(1), config={"writer": 1})
    before = _objects(url)
    with monkeypatch.context() as m:
        m.setattr(Location, "upload", lambda *a: pytest.fail("a rerun of the same content uploaded a file"))
        again = publish_version(root, "ds", writer_tables(1), config={"writer": 1})
    second = publish_version(root, "ds", writer_tables(2), config={"writer": 2})

    assert (first.name, first.created, str(first.path)) == ("v0001", True, f"{url}/ds/v0001")
    assert (again.name, again.created, again.manifest) == ("v0001", False, first.manifest)
    assert (second.name, second.manifest["parent"]) == ("v0002", "v0001")
    assert {k: v for k, v in _objects(url).items() if k.startswith("ds/v0001")} == before  # nothing rewritten
    assert version_names(root, "ds") == ["v0001", "v0002"] and [_check(root, v) for v in ("v0001", "v0002")] == [1, 2]
    assert not any(".staging" in k or "probe" in k for k in _objects(url))


@pytest.mark.parametrize("bad", [f"s3://AKIAX:{SECRET}@{BUCKET}/x", f"s3://AKIAX:{SECRET}/x@{BUCKET}/x",
                                 f"s3://{BUCKET}/x?aws_secret_access_key={SECRET}", f"s3://{BUCKET}/x#{SECRET}"],
                         ids=["userinfo", "slash-in-secret", "query", "fragment"])
def test_a_url_with_credentials_is_refused_without_repeating_them(bad):
    with pytest.raises(StoreError, match="may not carry credentials") as info:
        open_store(bad)
    result = runner.invoke(app, ["versions", "ds", "--store", bad])
    assert result.exit_code == 2 and "Traceback" not in result.output and "may not carry credentials" in result.output
    assert SECRET not in str(info.value) + result.output


def test_file_urls_are_local_paths_and_memory_urls_locations(tmp_path):
    assert open_store(f"file://{tmp_path}") == tmp_path and open_store(str(tmp_path)) == tmp_path
    assert str(open_store("memory://a/b")) == "memory:///a/b"


def test_a_backend_without_create_only_writes_is_refused():
    import fsspec
    from fsspec.implementations.memory import MemoryFileSystem

    class Plain(MemoryFileSystem):
        protocol = "plainobj"

    fsspec.register_implementation("plainobj", Plain, clobber=True)
    with pytest.raises(StoreError, match="cannot write create-only"):
        publish_version(open_store("plainobj://x"), "ds", writer_tables(1), config={"writer": 1})
    assert Plain().find("/x") == []


def test_a_server_that_ignores_if_none_match_is_refused(url, monkeypatch):
    import s3fs

    real = s3fs.S3FileSystem._pipe_file

    async def ignoring(self, path, data, mode="overwrite", **kw):
        return await real(self, path, data, **kw)

    s3fs.S3FileSystem.clear_instance_cache()  # an instance binds its sync methods when it is made
    monkeypatch.setattr(s3fs.S3FileSystem, "_pipe_file", ignoring)
    try:
        with pytest.raises(StoreError, match="ignores create-only writes"):
            publish_version(open_store(url), "ds", writer_tables(1), config={"writer": 1})
        assert version_names(open_store(url), "ds") == []
    finally:
        s3fs.S3FileSystem.clear_instance_cache()


def _in_threads(*targets) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_racing_threads_get_distinct_versions_of_their_own_files(url):
    root, barrier, results = open_store(url), threading.Barrier(4), {}

    def publish(writer):
        barrier.wait()
        results[writer] = publish_version(root, "ds", writer_tables(writer), config={"writer": writer}).name

    _in_threads(*(functools.partial(publish, w) for w in range(4)))
    assert sorted(results.values()) == ["v0001", "v0002", "v0003", "v0004"]
    assert {name: _check(root, name) for name in version_names(root, "ds")} == {v: w for w, v in results.items()}


def _workers(url: str, tmp_path: Path, modes: list[str]) -> list[subprocess.Popen]:
    """Writer processes, each `ready` before the go file lets all of them publish at the same moment."""
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-m", "tests.object_store_worker", url, str(w), mode, str(go)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w, mode in enumerate(modes, start=10)]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    go.touch()
    for proc in procs:
        proc.wait(timeout=60)
    return procs


def test_racing_processes_get_distinct_versions_of_their_own_files(url, tmp_path):
    procs = _workers(url, tmp_path, ["race", "race"])
    names = [p.stdout.read().strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [p.stderr.read() for p in procs]
    assert sorted(names) == ["v0001", "v0002"]
    assert [_check(open_store(url), n) for n in names] == [10, 11]


def test_a_polling_reader_never_sees_a_version_without_its_files(url):
    root, seen, problems, deadline = open_store(url), set(), [], time.monotonic() + 60

    def poll():  # one listing, as version_names takes it: a version with a manifest has all its files there
        while len(seen) < 6 and time.monotonic() < deadline:
            listing = (root / "ds").files()
            for name in sorted({rel.split("/")[0] for rel in listing if rel.endswith("/manifest.json")} - seen):
                seen.add(name)
                files = read_manifest(root, "ds", name)["files"]
                problems.extend(f"{name}/{rel}: not listed with its manifest" for rel in files
                                if f"{name}/{rel}" not in listing)
                try:
                    _check(root, name)
                except (AssertionError, OSError, StoreError) as exc:
                    problems.append(f"{name}: {exc}")

    def write(first):
        for writer in range(first, first + 3):
            publish_version(root, "ds", writer_tables(writer), config={"writer": writer})

    _in_threads(poll, functools.partial(write, 0), functools.partial(write, 3))
    assert problems == [] and len(seen) == 6


@pytest.mark.parametrize("mode", ["kill-in-staging", "kill-after-claim"])
def test_a_killed_writer_is_invisible(url, tmp_path, mode):
    root = open_store(url)
    publish_version(root, "ds", writer_tables(1), config={"writer": 1})
    (proc,) = _workers(url, tmp_path, [mode])
    assert proc.returncode == -9, proc.stderr.read()
    left = _objects(url)
    assert any(k.startswith("ds/.staging/") for k in left)

    assert version_names(root, "ds") == ["v0001"]
    assert missing_manifests(root, "ds") == ([root / "ds" / "v0002"] if mode == "kill-after-claim" else [])
    result = runner.invoke(app, ["query", "select distinct version, writer from samples", "--store", url, "-f", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == [{"version": "v0001", "writer": 1}], result.output
    after = publish_version(root, "ds", writer_tables(2), config={"writer": 2})
    assert (after.name, after.manifest["parent"]) == ("v0003" if mode == "kill-after-claim" else "v0002", "v0001")
    assert remove_stale_staging(root / "ds") == [] and len(remove_stale_staging(root / "ds", max_age=0)) == 1
    assert not any(k.startswith("ds/.staging/") for k in _objects(url))


def test_cli_reads_an_s3_store_through_duckdb_and_keeps_the_guards(url):
    root = open_store(url)
    for writer in (1, 2):
        publish_version(root, "ds", writer_tables(writer, rows=4), config={"writer": writer})
    query = ["query", "select version, writer, count(*) as n from pairs group by all order by all", "--store", url, "-f", "json"]
    result = runner.invoke(app, query)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"version": "v0001", "writer": 1, "n": 2}, {"version": "v0002", "writer": 2, "n": 2}]
    for args, expected in ((["versions", "ds"], "v0002"), (["show", "ds", "1"], '"writer": 1'),
                           (["diff", "ds", "1", "2"], "samples")):
        result = runner.invoke(app, [*args, "--store", url])
        assert result.exit_code == 0 and expected in result.output, result.output
    for hostile in ("select * from read_csv('/etc/passwd')", f"select * from glob('s3://{BUCKET}/*')",
                    f"select * from read_parquet('s3://{BUCKET}/elsewhere.parquet')", "copy (select 1) to 'x.csv'"):
        result = runner.invoke(app, ["query", hostile, "--store", url])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert "Permission" in result.output or "only SELECT" in result.output, result.output
    result = runner.invoke(app, ["card", "ds", "--store", url])
    assert result.exit_code == 2 and "reads a local store only" in result.output


def test_rollout_cache_on_object_storage_survives_a_restart_and_a_bad_shard():
    from prefmill.engines.cached import CachingEngine, RolloutCache
    from prefmill.engines.scripted import ScriptedEngine
    from tests.engines.test_cached import _policy, _req

    folder = open_store(f"memory://{uuid.uuid4().hex}") / ".cache" / "rollouts"
    first = CachingEngine(ScriptedEngine(_policy), RolloutCache(folder)).generate([_req("a")])
    (folder / "shard-zzzz.parquet").write_whole(b"not parquet")
    restarted = CachingEngine(ScriptedEngine(_policy), RolloutCache(folder))
    assert restarted.generate([_req("a")]) == first and restarted.engine.calls == 0
    assert "shard-zzzz.parquet" not in [s.name for s in folder.glob("shard-*.parquet")]
    assert (folder / "shard-zzzz.parquet.corrupt").read_bytes() == b"not parquet"


@pytest.mark.usefixtures("prefect_server")
def test_a_run_on_s3_publishes_what_a_local_run_does_and_no_secret_shows(url, tmp_path, monkeypatch):
    monkeypatch.setenv("PREFMILL_WORK", str(tmp_path / "work"))
    demo = ["run", str(ROOT / "configs" / "demo.yaml"), "--set", "engine.kind=scripted", "--set", "source.limit=3"]
    local = runner.invoke(app, [*demo, "--store", str(tmp_path / "local")])
    remote = runner.invoke(app, [*demo, "--store", url])
    assert local.exit_code == 0 and remote.exit_code == 0, local.output + remote.output
    hashes = [read_manifest(root, "gsm8k-demo")["content_hash"] for root in (tmp_path / "local", open_store(url))]
    assert hashes[0] == hashes[1]
    objects = _objects(url)
    assert any(k.startswith(".cache/rollouts/shard-") for k in objects)
    assert not any(k.startswith((".cache/gsm8k-demo", ".cache/prefect-results")) for k in objects)
    (work,) = (tmp_path / "work").iterdir()
    assert sorted(p.name for p in work.iterdir()) == ["gsm8k-demo", "prefect-results"]

    written = [*objects.values(), local.output.encode(), remote.output.encode()]
    for folder in (tmp_path, Path(os.environ["PREFECT_HOME"])):
        written += [p.read_bytes() for p in folder.rglob("*") if p.is_file()]
    assert not [b for b in written if SECRET.encode() in b or TOKEN.encode() in b]


@pytest.mark.usefixtures("prefect_server")
def test_the_demo_on_ray_replicas_into_a_bucket_is_the_local_dataset(url, tmp_path, monkeypatch, ray_cluster):
    """Both halves of scaling out at once: engine calls on 2 Ray replicas, versions and rollouts in S3."""
    monkeypatch.setenv("PREFMILL_WORK", str(tmp_path / "work"))
    demo = ["run", str(ROOT / "configs" / "demo.yaml"), "--set", "engine.kind=scripted", "--set", "source.limit=4"]
    ray = ["--set", "runner.kind=ray", "--set", f"runner.address={ray_cluster}", "--set", "runner.replicas=2",
           "--set", "runner.batch_size=4"]
    local = runner.invoke(app, [*demo, "--store", str(tmp_path / "local")])
    remote = runner.invoke(app, [*demo, *ray, "--store", url])
    assert local.exit_code == 0 and remote.exit_code == 0, local.output + remote.output
    manifests = [read_manifest(root, "gsm8k-demo") for root in (tmp_path / "local", open_store(url))]
    assert manifests[0]["content_hash"] == manifests[1]["content_hash"]
    assert manifests[1]["runner"]["replicas"] == 2 and any(k.startswith(".cache/rollouts/shard-") for k in _objects(url))
