"""The data plane at 1M rows: validate, publish, query, diff.

1,000,000 synthetic `pairs` rows (every column of schemas.tables.PAIRS, realistic text lengths) are
conformed to the schema, published as a version, queried through `prefmill query`'s read-only DuckDB
views (count, group by strategy, margin quantiles, a join to samples), then 1% of the rows are
changed, published as a second version and diffed against the first (`prefmill diff`). Seconds per
phase and peak RSS of this process. Targets: under 60 s and 2 GiB. Last line:
`dataplane seconds=<total> rss_gib=<peak>`.

    python -m bench.dataplane [--rows 1000000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

TEXT = ("Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48 + 24 = 72 clips altogether in April and May.\n#### 72")


def synthetic_pairs(rows: int, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    """(pairs, samples): `rows` pairs over rows / 4 prompts, and each chosen side's sample row."""
    from prefmill.schemas.tables import PAIRS

    rng = np.random.default_rng(seed)
    prompt_ids = np.char.add("q", (np.arange(rows) // 4).astype(str))
    ids = np.char.add("p", np.arange(rows).astype(str))
    chosen_ids = np.char.add(ids, "-c")
    margin = rng.random(rows)
    strategies = np.array(["verified_vs_incorrect", "best_worst", "curry", "rise"])[rng.integers(0, 4, rows)]
    message = lambda role, text: pa.array([[{"role": role, "content": text}]] * rows, PAIRS.field("prompt").type)  # noqa: E731
    columns = {
        "pair_id": pa.array(ids), "prompt_id": pa.array(prompt_ids), "prompt": message("user", "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether?"),
        "chosen": message("assistant", TEXT), "rejected": message("assistant", TEXT.replace("72", "73")),
        "strategy": pa.array(strategies), "chosen_source": pa.array(["sample"] * rows), "chosen_sample_id": pa.array(chosen_ids),
        "rejected_sample_id": pa.array(np.char.add(ids, "-r")), "chosen_answer": pa.array(["72"] * rows),
        "rejected_answer": pa.array(["73"] * rows), "reference_answer": pa.array(["72"] * rows),
        "chosen_score": pa.array(margin), "rejected_score": pa.array(np.zeros(rows)), "margin": pa.array(margin),
        "chosen_engine": pa.array(["bench"] * rows), "rejected_engine": pa.array(["bench"] * rows),
        "curriculum_rank": pa.array(np.arange(rows, dtype=np.int64)), "weight": pa.array(np.ones(rows)),
    }
    table = pa.table({f.name: columns[f.name] if f.name in columns else pa.nulls(rows, f.type) for f in PAIRS},
                     schema=PAIRS)
    samples = pa.table({"sample_id": pa.array(chosen_ids), "prompt_id": pa.array(prompt_ids),
                        "correct": pa.array(rng.random(rows) < 0.7)})
    return table, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    from prefmill.diff import diff_versions
    from prefmill.query import run_query
    from prefmill.schemas.tables import PAIRS
    from prefmill.schemas.validate import conform
    from prefmill.store import publish_version

    store = Path(tempfile.mkdtemp(prefix="prefmill-dataplane-"))
    phases: list[tuple[str, float]] = []

    def timed(name, fn):
        start = time.perf_counter()
        out = fn()
        phases.append((name, time.perf_counter() - start))
        return out

    pairs, samples = timed("make rows", lambda: synthetic_pairs(args.rows))
    pairs = timed("validate (conform to PAIRS)", lambda: conform(pairs, PAIRS, where="bench pairs"))
    timed("publish v0001", lambda: publish_version(store, "bench", {"pairs": pairs, "samples": samples}, config={"v": 1}))
    queries = {
        "count": "select count(*) from pairs",
        "group by strategy": "select strategy, count(*), avg(margin) from pairs group by 1 order by 1",
        "margin quantiles": "select quantile_cont(margin, [0.1, 0.5, 0.9]) from pairs",
        "join to samples": "select p.strategy, avg(s.correct::int) from pairs p join samples s "
                           "on p.chosen_sample_id = s.sample_id and p.version = s.version group by 1",
    }
    for name, sql in queries.items():
        result = timed(f"query: {name}", lambda sql=sql: run_query(store, sql))
        assert result.rows(), name
    changed = np.zeros(args.rows, dtype=bool)
    changed[:: 100] = True  # 1% of the rows get another margin
    margin = pairs["margin"].to_numpy()
    edited = pairs.set_column(pairs.schema.get_field_index("margin"), "margin", pa.array(np.where(changed, margin + 1, margin)))
    timed("publish v0002 (1% changed)", lambda: publish_version(store, "bench", {"pairs": edited, "samples": samples}, config={"v": 2}))
    expected = int(changed.sum())
    pairs = edited = margin = samples = None  # free them: the diff reads the published files
    configs, _ = timed("diff v0001 v0002", lambda: diff_versions(store, "bench", "v0001", "v0002"))
    found = {c.config: c.changed for c in configs}
    assert found == {"pairs": expected, "samples": 0}, found

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    total = sum(s for _, s in phases)
    print(f"{'phase':32s} {'seconds':>8s}")
    for name, seconds in phases:
        print(f"{name:32s} {seconds:8.2f}")
    print(f"{args.rows} pair rows; diff found {found['pairs']} changed of {args.rows}; targets: < 60 s, < 2 GiB")
    print(f"dataplane seconds={total:.1f} rss_gib={rss:.2f}")


if __name__ == "__main__":
    main()
