"""Scaling out: the same requests through one local engine and through 1, 2, 4 engine replicas on Ray.

Scripted part: the engine stands in for a model whose batch takes `latency + per_request x size`
seconds (a GPU's time grows with its batch), so what the replicas overlap is model time and what is
left is Ray's own cost. Baseline, measured in the same run: the local engine, one call for everything.
    overhead per batch = (wall at 1 replica - the engine's sleep for its batches) / batches
Recipe part: the preference flow (all its engine calls) on the same engine, local runner vs
`runner: ray`, with the published content hashes checked equal. Real part: GSM8K prompts through the real model (SmolLM2-135M via vLLM on this CPU): the local engine
vs one replica (same model, same requests, after one warm-up call each); more replicas on 2 cores only
share them, so `--real-replicas 1,2` shows that cost rather than a gain.

    python -m bench.ray_scale [--requests 2048] [--batch 64] [--replicas 1,2,4] [--recipe-prompts 512] [--real-prompts 16]

Last line: `ray_scale scripted_speedup_2=... scripted_speedup_max=... replicas_max=... recipe_speedup_2=... overhead_ms_per_batch=... real_ratio=...`
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT.parent / "shared" / "data" / "gsm8k" / "train.jsonl"


def _requests(count: int, *, n: int, max_tokens: int):
    from prefmill.config import GenerateConfig
    from prefmill.tasks.sampling.generate import build_requests
    import polars as pl

    rows = [json.loads(line) for line in TRAIN.read_text().splitlines()[:count]]
    prompts = pl.DataFrame({"prompt_id": [f"p{i}" for i in range(len(rows))], "question": [r["question"] for r in rows]})
    return build_requests(prompts, cfg=GenerateConfig(n=n, max_tokens=max_tokens, seed=11))


def _timed(engine, requests) -> tuple[float, list]:
    start = time.perf_counter()
    results = engine.generate(requests)
    return time.perf_counter() - start, results


def scripted(args, rows: list) -> dict[str, float]:
    from prefmill.engine_config import EngineConfig
    from prefmill.engines import engine_for
    from prefmill.runner_config import RunnerConfig

    cfg = EngineConfig(kind="scripted", latency=args.latency, latency_per_request=args.per_request)
    requests = _requests(len(TRAIN.read_text().splitlines()), n=4, max_tokens=64)
    requests = (requests * (args.requests // len(requests) + 1))[: args.requests]
    requests = [replace(r, request_id=f"{r.request_id}-{i}") for i, r in enumerate(requests)]
    local_s, expected = _timed(engine_for(cfg), requests)
    rows.append(("scripted", "local engine", local_s, len(requests) / local_s, 1.0))
    batches = -(-len(requests) // args.batch)
    sleep_per_batch = args.latency + args.per_request * args.batch
    figures: dict[str, float] = {}
    for replicas in args.replicas:
        pool = engine_for(cfg, runner=RunnerConfig(kind="ray", replicas=replicas, batch_size=args.batch))
        _timed(pool, requests[: args.batch * replicas])  # warm-up: actors up, first batch through
        wall, results = _timed(pool, requests)
        assert results == expected, "a replica returned other samples than the local engine"
        rows.append(("scripted", f"ray x{replicas}", wall, len(requests) / wall, local_s / wall))
        figures[f"speedup_{replicas}"] = local_s / wall
        if replicas == 1:
            figures["overhead_ms"] = (wall - batches * sleep_per_batch) / batches * 1e3
        pool.close()
    return figures


def _close_pools() -> None:
    from prefmill.engines import _ENGINES
    from prefmill.engines.ray_pool import RayEnginePool

    for key, engine in list(_ENGINES.items()):
        if isinstance(engine, RayEnginePool):
            engine.close()
            del _ENGINES[key]


def recipe(args, rows: list) -> dict[str, float]:
    """The preference recipe (generate, verify, vote, pointwise judge, pairs, RISE) through its real
    Prefect flow, local runner vs `runner: ray`, on the scripted engine with the same latency model."""
    import tempfile

    from prefmill.flows.preference import preference
    from prefmill.flows.server import prefect_api, start_api

    work = Path(tempfile.mkdtemp(prefix="prefmill-ray-scale-"))
    engine = {"kind": "scripted", "latency": args.latency, "latency_per_request": args.per_request}
    base = {"source": {"path": str(TRAIN), "limit": args.recipe_prompts}, "engine": engine,
            "generate": {"n": 4, "seed": 5, "chunk_size": 128}, "judge": {"pointwise": True},
            "rise": {"enabled": True, "editor": "llm"}}
    figures, hashes = {}, set()
    with prefect_api(start_api()):
        for label, runner in [("local", {}), *[(f"ray x{r}", {"kind": "ray", "replicas": r, "batch_size": args.batch})
                                               for r in args.replicas]]:
            recipe = base | {"dataset": "ray-scale", "runner": runner} if runner else base | {"dataset": "ray-scale"}
            start = time.perf_counter()
            result = preference(config=recipe, store=str(work / label.replace(" ", "")))
            wall = time.perf_counter() - start
            hashes.add(json.loads((Path(result["path"]) / "manifest.json").read_text())["content_hash"])
            figures[label] = wall
            _close_pools()  # the next runner's replicas need the CPUs these hold
            rows.append(("recipe", label, wall, args.recipe_prompts / wall, figures["local"] / wall))
    assert len(hashes) == 1, "the runners published different datasets"
    return figures


def real(args, rows: list) -> float:
    from prefmill.engine_config import EngineConfig
    from prefmill.engines import engine_for
    from prefmill.runner_config import RunnerConfig

    requests = _requests(args.real_prompts, n=4, max_tokens=args.real_tokens)
    warm = requests[:2]
    local = engine_for(EngineConfig())
    _timed(local, warm)
    local_s, _ = _timed(local, requests)
    samples = sum(r.sampling.n for r in requests)
    rows.append(("real", "local engine", local_s, samples / local_s, 1.0))
    ratio = 0.0
    del local
    from prefmill.engines import _ENGINES

    _ENGINES.clear()  # the local model's memory back before the replicas load theirs
    for replicas in args.real_replicas:
        cpus = max(1, (os.cpu_count() or 2) // replicas)
        pool = engine_for(EngineConfig(), runner=RunnerConfig(kind="ray", replicas=replicas, num_cpus=cpus,
                                                               batch_size=-(-len(requests) // replicas)))
        _timed(pool, warm)
        wall, _ = _timed(pool, requests)
        rows.append(("real", f"ray x{replicas}", wall, samples / wall, local_s / wall))
        ratio = ratio or local_s / wall
        pool.close()
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.05, help="scripted: seconds per call")
    parser.add_argument("--per-request", type=float, default=0.002, help="scripted: seconds per request of a call")
    parser.add_argument("--replicas", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4])
    parser.add_argument("--recipe-prompts", type=int, default=512, help="prompts through the preference flow (0: skip)")
    parser.add_argument("--real-prompts", type=int, default=16)
    parser.add_argument("--real-tokens", type=int, default=96)
    parser.add_argument("--real-replicas", type=lambda s: [int(x) for x in s.split(",")], default=[1])
    args = parser.parse_args()
    import ray

    ray.init(num_cpus=max(4, max(args.replicas)), include_dashboard=False, log_to_driver=False,
             object_store_memory=512 * 1024**2, configure_logging=False)
    rows: list[tuple] = []
    figures = scripted(args, rows)
    flows = recipe(args, rows) if args.recipe_prompts else {}
    real_ratio = real(args, rows) if args.real_prompts else 0.0
    print(f"{'engine':9s} {'runner':13s} {'seconds':>8s} {'rate/s':>14s} {'vs local':>9s}")
    for kind, runner, seconds, rate, ratio in rows:
        print(f"{kind:9s} {runner:13s} {seconds:8.2f} {rate:14.1f} {ratio:9.2f}")
    top = max(args.replicas)
    print(f"ray_scale scripted_speedup_2={figures.get('speedup_2', 0):.2f} scripted_speedup_max={figures[f'speedup_{top}']:.2f} "
          f"replicas_max={top} recipe_speedup_2={flows['local'] / flows['ray x2'] if 'ray x2' in flows else 0:.2f} "
          f"overhead_ms_per_batch={figures.get('overhead_ms', 0):.1f} real_ratio={real_ratio:.3f}")


if __name__ == "__main__":
    main()
