"""The Prefect API a `prefmill run` talks to: `PREFECT_API_URL` when it is set, else a temporary
server of our own.

Prefect starts its temporary server when the flow begins, so a run waited for it (~10-17 s) before its
first stage, and a SIGKILLed or SIGTERMed run left it running (it stops only in an `atexit` hook). Ours
runs the same app (`prefect.server.api.server:create_app`, the same database under PREFECT_HOME),
starts the moment the command begins, so the recipe checks, the imports and the model load overlap its
start-up, and is bound to this process: the kernel sends it SIGTERM when its parent dies, however it
dies (Linux `PR_SET_PDEATHSIG`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from prefmill.errors import PrefmillError

_PR_SET_PDEATHSIG = 1
TIMEOUT_ENV = "PREFMILL_SERVER_STARTUP_TIMEOUT"  # seconds; default 180 (a loaded machine is slow)
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: nothing may load a library between fork and exec


class ServerError(PrefmillError):
    """The temporary Prefect server did not come up."""


def _die_with_parent(parent: int) -> None:  # runs in the child, between fork and exec
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TemporaryServer:
    """Prefect's server app on 127.0.0.1, a child of this process that dies with it."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.log = tempfile.TemporaryFile()
        env = os.environ | {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        env.pop("PREFECT_API_URL", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
            env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            preexec_fn=lambda parent=os.getpid(): _die_with_parent(parent),
        )

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def wait(self, timeout: float | None = None) -> str:
        """Block until the server answers /health; its API URL."""
        timeout = _startup_timeout() if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"the temporary Prefect server exited with code {self.process.returncode}: "
                                  f"{self._tail()}", hint="set PREFECT_API_URL to a running server")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self.api_url
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ServerError(f"the temporary Prefect server did not answer within {timeout:.0f} s",
                          hint="raise PREFMILL_SERVER_STARTUP_TIMEOUT, or set PREFECT_API_URL to a running server")

    def _tail(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace").strip()[-600:] or "(no output)"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def _startup_timeout() -> float:
    raw = os.environ.get(TIMEOUT_ENV, "180")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ServerError(f"{TIMEOUT_ENV}={raw[:40]!r}: expected a number of seconds > 0")
    return value


def start_api() -> TemporaryServer | None:
    """Start a temporary server now unless PREFECT_API_URL names one (a shared server, deployments, or
    Prefect's settings in this process when it has imported them: a test harness, a profile)."""
    if os.environ.get("PREFECT_API_URL"):
        return None
    if "prefect.settings" in sys.modules and sys.modules["prefect.settings"].get_current_settings().api.url:
        return None
    try:
        return TemporaryServer()
    except OSError:  # cannot start one here: Prefect starts its own when the flow begins
        return None


@contextmanager
def prefect_api(server: TemporaryServer | None) -> Iterator[None]:
    """Flows inside this block talk to `server` (waited for here), or to PREFECT_API_URL."""
    if server is None:
        yield
        return
    from prefect.settings import get_current_settings

    if get_current_settings().api.url:  # a profile, prefect.toml or .env names a server: use it
        server.stop()
        yield
        return
    try:
        os.environ["PREFECT_API_URL"] = server.wait()
        _refresh_prefect_settings()  # every thread's fallback settings (Prefect reads the env at import)
        yield
    finally:
        _drain_prefect()
        os.environ.pop("PREFECT_API_URL", None)
        _refresh_prefect_settings()
        server.stop()


def _drain_prefect() -> None:
    """Send the logs and events Prefect still holds while the server is up (else each waits on a dead
    server and prints "Error logging to API" at exit)."""
    if "prefect.logging.handlers" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=10)
        except RuntimeError:  # never started
            pass


def _refresh_prefect_settings() -> None:
    if "prefect.context" in sys.modules:
        sys.modules["prefect.context"].refresh_global_settings_context()
