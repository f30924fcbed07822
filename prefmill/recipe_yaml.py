"""Reading a recipe's YAML without trusting it: at most 1 MB of UTF-8, no key given twice in one mapping,
no aliases that expand to a huge document ("billion laughs") or contain themselves."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import yaml

from prefmill.errors import ConfigError, cut, os_reason

MAX_RECIPE_BYTES = 1_000_000
"""A recipe is a few KB; a bigger file is a mistake (or an attack) and is refused before parsing."""

MAX_RECIPE_NODES = 100_000
"""Values a recipe may hold once its aliases are expanded ("billion laughs" holds ~10^9)."""


class RecipeProblem(yaml.YAMLError):
    """Valid YAML that is still refused as a recipe; its text is the whole message."""


class _DuplicateKey(RecipeProblem):
    def __init__(self, key: Any, first: int, second: int) -> None:
        super().__init__(f"duplicate key {cut(repr(key))} (lines {first} and {second})")


class _RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader (pure Python, so deep nesting is a `RecursionError`, not a crash) that
    refuses a key given twice in one mapping instead of keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` keys may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(key, seen[key], line)
                seen[key] = line
            except TypeError:  # an unhashable key: SafeConstructor reports it
                continue
        return super().construct_mapping(node, deep=deep)


def _expanded_size(root: yaml.Node) -> int:
    """Values in the document once every alias is expanded; raises on a recursive alias.

    Each node's size is computed once (aliases share nodes), so this is fast even when the expansion
    is astronomically large."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in on_path:
            raise RecipeProblem(f"line {node.start_mark.line + 1}: recursive alias (a value that contains itself)")
        on_path.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in node.value)
        else:
            total = 1
        on_path.discard(id(node))
        sizes[id(node)] = total
        return total

    return size(root)


def parse_yaml(text: str, *, name: str = "<text>") -> Any:
    """One YAML document as Python values; a `RecipeProblem` (a `yaml.YAMLError`) for a duplicate key or
    aliases out of bounds, `yaml.YAMLError` for invalid YAML, `RecursionError` for nesting too deep."""
    stream = io.StringIO(text)
    stream.name = name  # PyYAML's error marks name it
    loader = _RecipeLoader(stream)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if (nodes := _expanded_size(node)) > MAX_RECIPE_NODES:
            raise RecipeProblem(
                f"aliases expand to more than {MAX_RECIPE_NODES} values ({nodes}); a recipe that large is refused"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_recipe_text(path: Path) -> str:
    """The recipe's text; a `ConfigError` for a folder, a missing or unreadable file, over 1 MB, not UTF-8."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a recipe file", hint="give a YAML file, e.g. configs/demo.yaml")
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:  # at most one byte past the limit: /dev/zero is no recipe either
            raw = fh.read(MAX_RECIPE_BYTES + 1)
        if max(size, len(raw)) > MAX_RECIPE_BYTES:
            shown = f"{size / 1e6:.1f} MB" if size > MAX_RECIPE_BYTES else "more than 1 MB"
            raise ConfigError(f"{path}: {shown}; a recipe may be at most {MAX_RECIPE_BYTES // 1_000_000} MB")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such recipe file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the recipe: {os_reason(exc)}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})", hint="save the recipe as UTF-8"
        ) from None
