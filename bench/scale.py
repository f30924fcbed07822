"""The CPU side at GPU scale: the preference and process recipes through their real Prefect flows on
many prompts, with the scripted engine standing in for a model at (almost) zero cost.

On one H100 SmolLM2-135M writes 28k-45k tokens/s (datatrove); at ~200 tokens a sample that is ~140
samples/s, so to keep such an engine >= 90% busy everything else prefmill does must cost <= 0.7 ms a
sample the engine writes (policy samples, rollouts; judge verdicts are not counted). Each stage's time (read inputs, run, write outputs) comes from the flows' own stage timings; the
rest of the flow's wall time (loading prompts, publishing, Prefect's orchestration) is its own row;
the engine's share (the scripted policy's Python) is measured around its calls and subtracted from
the wall time, which gives the figure that counts: work outside the engine per sample.
Prompts are GSM8K train questions, numbered to make as many distinct ones as asked.

    python -m bench.scale [--prompts 100000] [--n 8] [--process-prompts 2000]

Last line: `scale samples=... ms_per_sample=... pref_ms_per_sample=... process_ms_per_sample=... rss_gib=...`
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT.parent / "shared" / "data" / "gsm8k" / "train.jsonl"
TARGET_MS = 0.7


JUDGING = {"judge_pointwise", "judge_pairwise", "first_error"}


class TimedEngine:
    """An engine that adds up the seconds spent inside it and the samples it wrote: policy samples,
    rollouts and continuations (what costs a GPU ~200 tokens each), not judge verdicts (~5 tokens)."""

    def __init__(self, inner) -> None:
        self.inner, self.fingerprint, self.seconds, self.samples = inner, inner.fingerprint, 0.0, 0

    def generate(self, requests):
        start = time.perf_counter()
        try:
            results = self.inner.generate(requests)
        finally:
            self.seconds += time.perf_counter() - start
        self.samples += sum(len(r.completions) for q, r in zip(requests, results) if q.purpose not in JUDGING)
        return results


def make_source(count: int, folder: Path) -> tuple[Path, dict[str, str]]:
    rows = [json.loads(line) for line in TRAIN.read_text().splitlines() if line.strip()]
    out, refs = folder / f"prompts-{count}.jsonl", {}
    with out.open("w") as f:
        for i in range(count):
            row = rows[i % len(rows)]
            question = row["question"] if i < len(rows) else f"{row['question']} (problem {i})"
            refs[question] = row["answer"]
            f.write(json.dumps({"question": question, "answer": row["answer"]}) + "\n")
    return out, refs


def run(flow_name: str, recipe: dict, refs: dict[str, str], store: Path) -> tuple[dict[str, float], float, float, int]:
    from prefmill import progress
    from prefmill.config import validate_config
    from prefmill.engines import _ENGINES, engine_for, register_engine

    cfg = validate_config(recipe)
    _ENGINES.clear()  # the engine of this recipe's prompts, timed
    engine = TimedEngine(engine_for(cfg.engine, references=refs))
    register_engine(cfg.engine, engine)
    stages: dict[str, float] = defaultdict(float)
    listener = lambda stage, seconds: stages.__setitem__(stage, stages[stage] + seconds)  # noqa: E731
    progress.add_stage_listener(listener)
    if flow_name == "process":
        from prefmill.flows.process import process as flow
    else:
        from prefmill.flows.preference import preference as flow
    start = time.perf_counter()
    try:
        flow(config=cfg.model_dump(mode="json"), store=str(store))
    finally:
        progress.remove_stage_listener(listener)
    wall = time.perf_counter() - start
    return dict(stages), engine.seconds, wall, engine.samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=100_000)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--process-prompts", type=int, default=2000, help="prompts for the process recipe (MC rollouts)")
    parser.add_argument("--rollouts", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="prefmill-scale-"))
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect-home"))
    os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
    from prefmill.flows.server import prefect_api, start_api

    engine = {"kind": "scripted", "p_error": 0.3}
    base = {"engine": engine, "decontamination": {"enabled": False}, "generate": {"n": args.n, "seed": 3}}
    jobs = [
        ("preference", args.prompts, base | {"dataset": "scale-pref", "judge": {"pointwise": True}}),
        ("process", args.process_prompts, base | {"dataset": "scale-process", "flow": "process",
                                                  "process": {"method": "mc", "rollouts": args.rollouts}}),
    ]
    results = {}
    with prefect_api(start_api()):
        for name, count, recipe in jobs:
            source, refs = make_source(count, work)
            recipe = recipe | {"source": {"path": str(source), "limit": count}}
            print(f"{name}: {count} prompts x n={args.n} ...", file=sys.stderr, flush=True)
            results[name] = run(name, recipe, refs, work / "store")

    print(f"{'recipe':10s} {'stage':18s} {'seconds':>8s} {'s/1M samples':>12s}")
    figures = {}
    for name, (stages, engine_s, wall, samples) in results.items():
        for stage, seconds in sorted(stages.items(), key=lambda kv: -kv[1]):
            print(f"{name:10s} {stage:18s} {seconds:8.1f} {seconds / samples * 1e6:12.0f}")
        other = wall - sum(stages.values())
        print(f"{name:10s} {'(rest of the flow)':18s} {other:8.1f} {other / samples * 1e6:12.0f}   load, publish, Prefect")
        cpu = wall - engine_s
        print(f"{name:10s} {'(engine, removed)':18s} {engine_s:8.1f}")
        print(f"{name:10s} {'= outside engine':18s} {cpu:8.1f} {cpu / samples * 1e6:12.0f}   wall {wall:.1f} s, {samples} samples")
        figures[name] = (cpu, samples)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    total_cpu, total_samples = sum(c for c, _ in figures.values()), sum(s for _, s in figures.values())
    pref, proc = (figures[k][0] / figures[k][1] * 1e3 for k in ("preference", "process"))
    print(f"target <= {TARGET_MS} ms of work outside the engine per sample")
    print(f"scale samples={total_samples} ms_per_sample={total_cpu / total_samples * 1e3:.3f} pref_ms_per_sample={pref:.3f} "
          f"process_ms_per_sample={proc:.3f} rss_gib={rss:.2f}")


if __name__ == "__main__":
    main()
