"""`prefmill run` without PREFECT_API_URL starts its own temporary Prefect server: it must be up before
the flow needs it, and gone when the command ends, however it ends (a normal exit, SIGTERM, SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import GSM8K, ROOT


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start(tmp_path: Path, latency: float, **sections) -> tuple[subprocess.Popen, Path]:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "dataset": "server", "source": {"path": str(GSM8K / "train.jsonl"), "limit": 4},
        "engine": {"kind": "scripted", "latency": latency}, "generate": {"n": 1},
        "decontamination": {"enabled": False}, **sections,
    }))
    home, log = tmp_path / "prefect-home", tmp_path / "run.log"
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PYTEST_CURRENT_TEST")}
    env |= {"PREFECT_HOME": str(home), "PREFECT_MEMO_STORE_PATH": str(home / "memo.toml")}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "prefmill.cli", "run", str(recipe), "--store", str(tmp_path / "store")],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, log


def _wait_for(log: Path, text: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert proc.poll() is None or text in log.read_text(errors="replace"), log.read_text()
        assert time.monotonic() < deadline, f"no {text!r} in {timeout} s:\n{log.read_text()}"
        time.sleep(0.2)


def test_a_finished_run_stops_its_server_after_sending_its_logs(tmp_path):
    proc, log = _start(tmp_path, latency=0)
    _wait_for(log, "Beginning flow run", proc)
    (server,) = _children(proc.pid)
    assert proc.wait(timeout=180) == 0, log.read_text()
    out = log.read_text()
    assert "server/v0001" in out and "Error logging to API" not in out and "Starting temporary server" not in out
    assert not _alive(server)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_run_leaves_no_server_behind(tmp_path, sig):
    proc, log = _start(tmp_path, latency=60)  # the first engine call is in flight when the signal comes
    _wait_for(log, "load-prompts", proc)
    servers = _children(proc.pid)
    assert len(servers) == 1, servers
    os.kill(proc.pid, sig)  # the command only, not its process group
    proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while _alive(servers[0]) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = _alive(servers[0])
    if alive:
        os.kill(servers[0], signal.SIGKILL)
    assert not alive, f"the temporary server outlived `prefmill run` killed by {sig.name}"


def test_an_error_inside_the_flow_is_said_once_without_prefects_restatements(tmp_path):
    """A bad recipe value only the flow can see (a version that does not exist): prefmill's one
    line, exit 2; Prefect's "Encountered exception" and "Finished in state Failed" lines stay in its
    UI and API logs, off the console."""
    proc, log = _start(tmp_path, latency=0, pairs={"strategy": "anchored", "future_version": "v0009"})
    assert proc.wait(timeout=180) == 2, log.read_text()
    out = log.read_text()
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert errors == ["error: pairs.future_version: " + f"{tmp_path / 'store' / 'server'}: no versions of dataset 'server'"], out
    assert "Encountered exception" not in out and "Finished in state Failed" not in out and "Traceback" not in out, out
