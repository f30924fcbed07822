"""The layering rules, read from the import statements: one layer knows Prefect, one module a kind
of engine knows vLLM, stage logic knows neither, and the machinery never imports stage logic."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _offending(folder: str, banned: tuple[str, ...], allowed: tuple[str, ...] = ()) -> dict[str, list[str]]:
    bad = {}
    for path in _files(folder):
        rel = str(path.relative_to(ROOT))
        if rel in allowed:
            continue
        hits = sorted(m for m in _imports(path) if any(m == b or m.startswith(b + ".") for b in banned))
        if hits:
            bad[rel] = hits
    return bad


def test_stage_logic_knows_neither_prefect_nor_vllm_nor_the_flows():
    assert _offending("tasks", ("prefect", "vllm", "prefmill.flows")) == {}


def test_the_machinery_never_imports_stage_logic_or_prefect():
    # the CLI starts flows (lazily, inside its commands); nothing else in prefmill/ reaches them
    assert _offending("prefmill", ("prefmill.tasks",)) == {}
    assert _offending("prefmill", ("prefmill.flows", "prefect"), allowed=("prefmill/cli.py",)) == {}


def test_only_the_vllm_engine_and_its_server_know_vllm():
    allowed = ("prefmill/engines/vllm.py", "prefmill/engines/serve.py")
    assert _offending("prefmill", ("vllm",), allowed=allowed) == {}
    assert _offending("schemas", ("vllm", "prefect", "prefmill.tasks", "prefmill.flows")) == {}


@pytest.mark.parametrize("folder", ["tasks", "flows", "prefmill", "schemas"])
def test_files_stay_small(folder):
    """One concept a file: ~300 lines at most."""
    long = {str(p.relative_to(ROOT)): n for p in _files(folder) if (n := len(p.read_text().splitlines())) > 330}
    assert long == {}
