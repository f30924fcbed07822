"""Train/test splits of a published version, cut by prompt at publish time (the store keeps each
version whole).

A row is in the test split iff the sha256 of its `prompt_id` (first 8 bytes, big-endian, as a
fraction of 2**64) is below `test_size`. The side depends on the prompt id alone, so one prompt lands
on the same side in every config and every version published with the same `test_size`: no prompt
leaks from a config's test split into another config's (or a later version's) train split.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from prefmill.errors import StoreError, cut

SPLIT_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
"""What a split name may be: `datasets` accepts `\\w+`; ASCII only, and `all` is its union of splits."""


@dataclass(frozen=True)
class Splits:
    """How `prefmill publish` cuts every config of a version."""

    test_size: float = 0.1
    """Share of the prompts in the test split, in [0, 1); 0 publishes the train split only."""
    names: tuple[str, str] = ("train", "test")
    """(train, test) split names, e.g. ("train_prefs", "test_prefs") as UltraFeedback-style recipes expect."""

    def __post_init__(self) -> None:
        size = self.test_size
        if isinstance(size, bool) or not isinstance(size, (int, float)) or not 0 <= size < 1:
            raise StoreError(f"--test-size must be in [0, 1) (0: no test split), got {cut(repr(size))}",
                             hint="e.g. --test-size 0.1 (a tenth of the prompts in the test split)")
        names = self.names
        if (not isinstance(names, tuple) or len(names) != 2 or len(set(names)) != 2
                or not all(isinstance(n, str) and SPLIT_NAME.match(n) and n != "all" for n in names)):
            raise StoreError(f"--splits must be two distinct split names `train,test` (letters, digits, _; not "
                             f"`all`), got {cut(repr(','.join(map(str, names)) if isinstance(names, tuple) else names))}",
                             hint="e.g. --splits train,test or --splits train_prefs,test_prefs")

    @classmethod
    def from_options(cls, test_size: float, splits: str) -> Splits:
        """The CLI's `--test-size 0.1 --splits train,test`."""
        return cls(test_size, tuple(part.strip() for part in splits.split(",")))  # type: ignore[arg-type]

    @property
    def train(self) -> str:
        return self.names[0]

    @property
    def test(self) -> str:
        return self.names[1]

    @property
    def published(self) -> tuple[str, ...]:
        """The split names a publish can write: the test split only when `test_size` > 0."""
        return self.names if self.test_size > 0 else (self.train,)

    @property
    def key(self) -> str:
        """What a second publish compares: two settings that publish the same files have the same key."""
        return f"splits={','.join(self.published)} test_size={float(self.test_size)!r}"


def prompt_fraction(prompt_id: str) -> float:
    """The prompt's place in [0, 1): sha256 of the id, first 8 bytes as a fraction of 2**64."""
    return int.from_bytes(hashlib.sha256(prompt_id.encode("utf-8")).digest()[:8], "big") / 2**64


def held_out(prompt_id: str, test_size: float) -> bool:
    """True: the prompt's rows belong in the test split."""
    return prompt_fraction(prompt_id) < test_size


def held_out_mask(table: pa.Table, test_size: float, *, where: str) -> pa.ChunkedArray:
    """True for the rows of `table` in the test split (hashing each distinct prompt id once)."""
    if "prompt_id" not in table.column_names:
        raise StoreError(f"{where}: has no `prompt_id` column, so it cannot be split by prompt",
                         hint="publish with --test-size 0 (train only)")
    ids = table["prompt_id"]
    if ids.null_count:
        raise StoreError(f"{where}: {ids.null_count} rows have no prompt_id, so they cannot be split by prompt",
                         hint="publish with --test-size 0 (train only), or repair the version")
    chosen = [p for p in pc.unique(ids).to_pylist() if held_out(p, test_size)]
    return pc.is_in(ids, value_set=pa.array(chosen, type=ids.type))


def split_table(table: pa.Table, splits: Splits, *, where: str) -> dict[str, pa.Table]:
    """{train name: rows, test name: rows} of `table` (both present, either may be empty), rows in
    their stored order."""
    if splits.test_size == 0:
        return {splits.train: table, splits.test: table.slice(0, 0)}
    mask = held_out_mask(table, splits.test_size, where=where)
    return {splits.train: table.filter(pc.invert(mask)), splits.test: table.filter(mask)}


def split_path(config: str, split: str) -> str:
    """Where a config's split sits in a published repository or folder."""
    return f"data/{config}/{split}-00000-of-00001.parquet"


@dataclass(frozen=True)
class SplitFile:
    """One split of one config as publish writes it."""

    rows: int
    num_bytes: int
    """Arrow size of the table read back from the file: what `datasets` records as the split's num_bytes."""
    path: Path | None
    """The local file to publish; None: the split is empty and not published."""


def write_splits(sources: dict[str, Path], splits: Splits, out_dir: Path) -> dict[str, dict[str, SplitFile]]:
    """Cut each config's stored file (`sources`: config -> path) into its splits under `out_dir`:
    config -> {split name: SplitFile} for both names. With `test_size` 0 the stored file itself is the
    train split (no copy, the same bytes); else each non-empty split is written with the stored
    table's own schema, so the published columns are the store's."""
    layout = {}
    for config, source in sources.items():
        try:
            table = pq.read_table(source)
        except (OSError, pa.ArrowException) as exc:
            raise StoreError(f"{source}: cannot read: {exc}", hint="the version is damaged: restore it from a backup") from None
        layout[config] = {}
        for name, part in split_table(table, splits, where=f"config `{config}`").items():
            if not part.num_rows:
                layout[config][name] = SplitFile(0, 0, None)
            elif splits.test_size == 0:
                layout[config][name] = SplitFile(part.num_rows, table.nbytes, source)
            else:
                target = out_dir / split_path(config, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(part, target, compression="zstd")
                layout[config][name] = SplitFile(part.num_rows, pq.read_table(target).nbytes, target)
    return layout
