"""Files that appear whole or not at all: written to a temporary name beside the target, then renamed."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _umask() -> int:
    """This process's umask, read without changing it (os.umask would, for every thread at once)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


FILE_MODE = 0o666 & ~_umask()  # what open() would give: other users of a shared store can read it


def write_atomically(path: Path, write: Callable[[str], None]) -> Path:
    """Call `write(temporary_path)`, then rename it to `path`; on any failure nothing is left behind.
    The file gets the mode a plain `open` would give (mkstemp's 0600 would hide it from other users)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
