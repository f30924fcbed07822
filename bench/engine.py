"""prefmill's generate stage vs `vllm.LLM.generate` built independently, in its own process.

The same requests both ways (prefmill's prompts, chat template, per-request seeds, logprobs): the raw
side is bench/plain_vllm.py in a subprocess, once with vLLM's defaults and once with prefmill's engine
settings; the prefmill side is the generate stage on prefmill's `VLLMEngine` in this process. Each
side warms up once, then runs `--rounds` timed rounds. Last line:
`engine ratio=<prefmill tok/s / raw tok/s at vLLM's defaults> tuned_ratio=<... / raw with prefmill's settings>`.

    python -m bench.engine [--prompts 16] [--n 4] [--max-tokens 128] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GSM8K = ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--n", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--source", default=str(GSM8K))
    args = parser.parse_args()

    from prefmill.config import GenerateConfig, SourceConfig
    from prefmill.engines.vllm import VLLMEngine
    from prefmill.sources import load_prompts
    from prefmill.tasks.sampling.generate import build_requests, generate

    prompts = load_prompts(SourceConfig(path=args.source, limit=args.prompts))
    cfg = GenerateConfig(n=args.n, max_tokens=args.max_tokens, temperature=0.8)
    requests = build_requests(prompts, cfg=cfg)
    engine = VLLMEngine()
    job = {"model": engine.model, "dtype": engine.dtype, "device": VLLMEngine._device(), "rounds": args.rounds,
           "generate": {"n": cfg.n, "temperature": cfg.temperature, "top_p": cfg.top_p, "max_tokens": cfg.max_tokens},
           "requests": [{"messages": list(r.messages), "seed": r.sampling.seed} for r in requests]}
    work = Path(tempfile.mkdtemp(prefix="prefmill-engine-bench-"))
    (work / "job.json").write_text(json.dumps(job))
    print(f"model={engine.fingerprint} prompts={prompts.height} n={cfg.n} max_tokens={cfg.max_tokens}")

    rates: dict[str, list[float]] = {}
    for settings in ("defaults", "tuned"):  # the raw sides first, each in its own process, then ours
        out = subprocess.run([sys.executable, "-m", "bench.plain_vllm", str(work / "job.json"), str(work), settings],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        rates[f"raw-{settings}"] = json.loads(next(x for x in reversed(out.splitlines()) if x.startswith('{"rates"')))["rates"]

    def ours() -> float:
        start = time.perf_counter()
        tokens = int(generate(prompts, engine=engine, cfg=cfg)["num_tokens"].sum())
        return tokens / (time.perf_counter() - start)

    ours()  # warm-up: model load, kernels, prefix cache
    rates["prefmill"] = [ours() for _ in range(args.rounds)]
    for name, values in rates.items():
        print(f"{name:13s} " + " ".join(f"{v:7.1f}" for v in values) + f"   median tok/s {statistics.median(values):7.1f}")
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f"engine ratio={median['prefmill'] / median['raw-defaults']:.3f} "
          f"tuned_ratio={median['prefmill'] / median['raw-tuned']:.3f} prefmill_tok_s={median['prefmill']:.1f} "
          f"raw_defaults_tok_s={median['raw-defaults']:.1f} raw_tuned_tok_s={median['raw-tuned']:.1f}")


if __name__ == "__main__":
    main()
