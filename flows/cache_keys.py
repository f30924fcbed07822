"""Cache keys that come from the code: no hand-bumped version constant to forget.

A stage's key hashes its name, the source of the module that defines it and of every prefmill module
that module imports (followed transitively, read from the import statements, computed once per
process), its configs, its input tables' content hashes and the engine fingerprint. Edit a stage or a
helper it uses and its key, and so the key of every stage fed by its output, changes; an LLM call is
not a stage, so the rollout cache still serves the generations (prefmill.engines.cached).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from prefmill.config import config_hash
from prefmill.refs import TableRef

PACKAGE = "prefmill"


def module_source(name: str) -> bytes:
    """The source of module `name` (tests replace this to simulate an edit)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise ImportError(f"cache key: no Python source for module {name!r}")
    return Path(spec.origin).read_bytes()


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@functools.lru_cache(maxsize=None)
def imported_modules(name: str) -> frozenset[str]:
    """The prefmill modules `name`'s source imports (anywhere in the file, lazy imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(module_source(name))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == PACKAGE:
            for alias in node.names:  # `from prefmill.tasks.rise import inject` names a module
                child = f"{node.module}.{alias.name}"
                found.add(child if _is_module(child) else node.module)
    return frozenset(m for m in found if _is_module(m) and not m.endswith("__init__"))


@functools.lru_cache(maxsize=None)
def code_hash(name: str) -> str:
    """Hash of module `name`'s source and of every prefmill module it reaches through imports."""
    seen, todo = set(), [name]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(imported_modules(module))
    h = hashlib.sha256()
    for module in sorted(seen):
        h.update(module.encode() + b"\0" + module_source(module) + b"\0")
    return h.hexdigest()[:24]


def clear() -> None:
    """Forget the hashes computed in this process (after an edit, in tests)."""
    imported_modules.cache_clear()
    code_hash.cache_clear()


def key_part(value: Any) -> str:
    """What a parameter contributes to a key: a table's content hash, a config's hash, an engine's
    fingerprint, or the value itself."""
    if isinstance(value, TableRef):
        return value.sha256
    if isinstance(value, BaseModel):
        return config_hash(value)
    if hasattr(value, "fingerprint"):
        return value.fingerprint
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(key_part(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{key_part(v)}" for k, v in sorted(value.items())) + "}"
    if value is None or isinstance(value, (str, int, float, bool)):
        return repr(value)
    raise TypeError(f"cache key: no key for a {type(value).__name__} parameter")


def stage_key(stage: str, module: str, arguments: dict[str, Any]) -> str:
    """The cache key of one call of a stage; also names the files it writes."""
    parts = [stage, code_hash(module)] + [f"{k}={key_part(v)}" for k, v in sorted(arguments.items())]
    return f"{stage}-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]
