"""Checkpoints of a long stage: one JSON document a finished unit of work (e.g. an OmegaPRM question),
each written whole, so a run killed mid-stage (even `kill -9`) resumes after the last finished unit."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from prefmill.atomic import write_atomically

log = logging.getLogger("prefmill")


class Checkpoints:
    """A folder of `<name>.json` documents; `load()` reads what an earlier run finished."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def load(self) -> dict[str, Any]:
        """Every finished unit's document by name; a document that does not parse is done again."""
        done = {}
        for file in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            try:
                done[file.stem] = json.loads(file.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                log.warning("checkpoint %s does not parse; its unit is computed again", file)
        return done

    def save(self, name: str, document: Any) -> None:
        write_atomically(self.folder / f"{name}.json", lambda tmp: Path(tmp).write_text(json.dumps(document)))
