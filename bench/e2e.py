"""End to end, as a user runs it: `prefmill run` in a subprocess vs a plain `vllm.LLM` script on the same job.

The job (issue 13): `--size` GSM8K test questions x n=4 samples x 256 tokens at T=0.8 on the default
model, one self-judge score per sample, best-vs-worst DPO pairs. Each side runs cold in its own process
tree: a fresh store (nothing cached) and a fresh Prefect home (migrated before the clock starts, as a
user's is). For both: wall, time inside the engine (its `generate` calls), time outside it, output
tokens, tokens/s, peak RSS of the whole process tree (sampled every 0.1 s), and prefmill's first
output line. Last line:

    e2e speed_ratio=<plain wall / prefmill wall> overhead_s=<prefmill wall - tuned wall> rss_ratio=<prefmill / plain> ...

    python -m bench.e2e [--size 8] [--n 4] [--max-tokens 256]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
GSM8K = ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl"


def _tree_memory(proc: psutil.Process) -> int:
    """PSS of the process tree: shared pages (vLLM's engine process maps the same memory) count once."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_full_info().pss
        except psutil.Error:
            pass
    return total


def measure(cmd: list[str], env: dict[str, str], log: Path) -> dict:
    """Run `cmd`; wall, peak tree RSS, the time of its first output line, its stdout."""
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first: list[float] = []
    lines: dict[str, list[str]] = {"out": [], "err": []}

    def read(stream, key):
        for line in stream:
            if not first and line.strip():
                first.append(time.time() - start)
            lines[key].append(line)

    readers = [threading.Thread(target=read, args=(proc.stdout, "out")), threading.Thread(target=read, args=(proc.stderr, "err"))]
    for r in readers:
        r.start()
    watched, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        peak = max(peak, _tree_memory(watched))
        time.sleep(0.1)
    wall = time.time() - start
    for r in readers:
        r.join()
    log.write_text("".join(lines["out"]) + "".join(lines["err"]))
    if proc.returncode != 0:
        sys.exit(f"{cmd[2]} failed (exit {proc.returncode}); see {log}")
    return {"wall_s": wall, "peak_rss": peak, "first_output_s": first[0] if first else wall, "stdout": "".join(lines["out"])}


def job(size: int, n: int, max_tokens: int, work: Path) -> tuple[Path, Path]:
    """The recipe prefmill runs and the same requests, as a job file, for the plain script."""
    from prefmill.config import validate_config
    from prefmill.engines.vllm import VLLMEngine
    from prefmill.models import pick_dtype, resolve_model
    from prefmill.sources import load_prompts
    from prefmill.tasks.preference.judge import POINTWISE_LINE, build_pointwise_prompt
    from prefmill.tasks.judging import answer_format
    from prefmill.tasks.sampling.generate import build_requests

    recipe = {"dataset": "e2e", "source": {"path": str(GSM8K), "limit": size},
              "decontamination": {"enabled": False},  # the prompts ARE the test set here
              "generate": {"n": n, "max_tokens": max_tokens, "temperature": 0.8},
              "judge": {"pointwise": True}, "pairs": {"strategy": "best_worst"}}
    cfg = validate_config(recipe)
    (work / "recipe.yaml").write_text(yaml.safe_dump(recipe))

    requests = build_requests(load_prompts(cfg.source), cfg=cfg.generate)
    spec = {
        "model": resolve_model("default"), "dtype": pick_dtype("auto", device=VLLMEngine._device()),
        "device": VLLMEngine._device(),
        "generate": {"n": n, "temperature": 0.8, "top_p": cfg.generate.top_p, "max_tokens": max_tokens},
        "requests": [{"messages": list(r.messages), "seed": r.sampling.seed, "question": r.inputs["question"]} for r in requests],
        "judge": {"template": build_pointwise_prompt("\0Q\0", "\0S\0", rubric=cfg.judge.rubric, rationale=cfg.judge.rationale),
                  "regex": answer_format(POINTWISE_LINE, rationale=cfg.judge.rationale), "max_tokens": cfg.judge.tokens,
                  "temperature": cfg.judge.temperature, "seed": cfg.judge.seed},
    }
    (work / "job.json").write_text(json.dumps(spec))
    return work / "recipe.yaml", work / "job.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=8, help="GSM8K test questions")
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="prefmill-e2e-"))
    work.mkdir(parents=True, exist_ok=True)
    recipe, job_file = job(args.size, args.n, args.max_tokens, work)
    home = work / "prefect-home"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    subprocess.run([sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"], env=env, check=True,
                   capture_output=True)  # a user's Prefect home is migrated already
    model = Path(json.loads(job_file.read_text())["model"])
    for f in model.glob("*.safetensors"):  # both sides find the weights in the page cache
        f.read_bytes()

    sides = {}
    for name in ("plain", "tuned"):
        cmd = [sys.executable, "-m", "bench.plain_vllm", str(job_file), str(work / name), "defaults" if name == "plain" else "tuned"]
        side = measure(cmd, env, work / f"{name}.log")
        figures = json.loads(next(line for line in reversed(side["stdout"].splitlines()) if line.startswith('{"engine_s"')))
        sides[name] = side | {"engine_s": figures["engine_s"], "tokens": figures["output_tokens"]}

    engine_log = work / "engine.jsonl"
    ours = measure([sys.executable, "-m", "prefmill.cli", "run", str(recipe), "--store", str(work / "store")],
                   env | {"PREFMILL_ENGINE_LOG": str(engine_log)}, work / "prefmill.log")
    calls = [json.loads(line) for line in engine_log.read_text().splitlines()]
    ours |= {"engine_s": sum(c["end"] - c["start"] for c in calls), "tokens": sum(c["output_tokens"] for c in calls)}

    sides["prefmill"] = ours
    plain, tuned = sides["plain"], sides["tuned"]
    print(f"job: {args.size} questions x n={args.n} x {args.max_tokens} tokens, judge score per sample; work {work}")
    print(f"{'side':9s} {'wall_s':>7s} {'engine_s':>8s} {'outside_s':>9s} {'tokens':>7s} {'eng_tok/s':>9s} "
          f"{'wall_tok/s':>10s} {'pss_gib':>7s} {'first_s':>7s}")
    for name, side in sides.items():
        print(f"{name:9s} {side['wall_s']:7.1f} {side['engine_s']:8.1f} {side['wall_s'] - side['engine_s']:9.1f} "
              f"{side['tokens']:7d} {side['tokens'] / side['engine_s']:9.1f} {side['tokens'] / side['wall_s']:10.1f} "
              f"{side['peak_rss'] / 2**30:7.2f} {side['first_output_s']:7.1f}")
    print(f"e2e speed_ratio={plain['wall_s'] / ours['wall_s']:.3f} overhead_s={ours['wall_s'] - tuned['wall_s']:.1f} "
          f"rss_ratio={ours['peak_rss'] / plain['peak_rss']:.3f} tuned_ratio={tuned['wall_s'] / ours['wall_s']:.3f} "
          f"first_output_s={ours['first_output_s']:.1f} "
          f"prefmill_wall_s={ours['wall_s']:.1f} plain_wall_s={plain['wall_s']:.1f} "
          f"prefmill_rss_gib={ours['peak_rss'] / 2**30:.2f} plain_rss_gib={plain['peak_rss'] / 2**30:.2f}")


if __name__ == "__main__":
    main()
