"""prefmill's generate stage vs raw `vllm.LLM.generate` on identical requests, in one process.

Both sides share one `vllm.LLM`; rounds alternate (raw, prefmill, raw, ...) after a warm-up so
prefix caching and CPU state favour neither. Last line: `engine ratio=<prefmill tok/s / raw tok/s>`.

    python bench/engine.py [--prompts 16] [--n 4] [--max-tokens 128] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
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
    engine = VLLMEngine()
    requests = build_requests(prompts, cfg=cfg)
    raw_prompts = [engine.render(r) for r in requests]
    raw_params = [VLLMEngine.sampling_params(r) for r in requests]

    def raw() -> int:
        outputs = engine.llm.generate(raw_prompts, raw_params, use_tqdm=False)
        return sum(len(c.token_ids) for o in outputs for c in o.outputs)

    def ours() -> int:
        return int(generate(prompts, engine=engine, cfg=cfg)["num_tokens"].sum())

    print(f"model={engine.fingerprint} prompts={prompts.height} n={cfg.n} max_tokens={cfg.max_tokens}")
    raw()  # warm-up: model load, kernels, prefix cache
    rates: dict[str, list[float]] = {"raw": [], "prefmill": []}
    for r in range(args.rounds):
        for name, fn in (("raw", raw), ("prefmill", ours)):
            start = time.perf_counter()
            tokens = fn()
            seconds = time.perf_counter() - start
            rates[name].append(tokens / seconds)
            print(f"round {r + 1} {name:8s} tokens={tokens:6d} seconds={seconds:7.2f} tok/s={tokens / seconds:7.1f}")
    raw_rate, our_rate = statistics.median(rates["raw"]), statistics.median(rates["prefmill"])
    print(f"median tok/s raw={raw_rate:.1f} prefmill={our_rate:.1f}")
    print(f"engine ratio={our_rate / raw_rate:.3f}")


if __name__ == "__main__":
    main()
