"""prefmill: synthetic preference and process-supervision data for LLM post-training."""

from __future__ import annotations

import os
from pathlib import Path

__version__ = "0.1.0"


def _prefect_defaults() -> None:
    # Prefect 3.7.7 writes its memo store to ~/.prefect even when PREFECT_HOME points elsewhere, and
    # its server tries to send telemetry (there is no network here). A user's own values win.
    home = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")).expanduser()
    os.environ.setdefault("PREFECT_MEMO_STORE_PATH", str(home / "memo_store.toml"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


_prefect_defaults()
