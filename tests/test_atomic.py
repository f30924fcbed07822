"""Atomic writes leave whole files with the mode a plain write would give."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from prefmill.atomic import write_atomically


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_files_get_the_umask_mode_not_mkstemps_0600(tmp_path, umask):
    code = ("import os, sys; from pathlib import Path; from prefmill.atomic import write_atomically; "
            f"os.umask({umask}); import importlib, prefmill.atomic as a; importlib.reload(a); "
            "a.write_atomically(Path(sys.argv[1]), lambda t: Path(t).write_text('x'))")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "f")], check=True)
    assert stat.S_IMODE(os.stat(tmp_path / "f").st_mode) == 0o666 & ~umask


def test_a_failed_write_leaves_nothing(tmp_path):
    def fail(tmp):
        raise RuntimeError("disk")

    with pytest.raises(RuntimeError):
        write_atomically(tmp_path / "f", fail)
    assert list(tmp_path.iterdir()) == []
