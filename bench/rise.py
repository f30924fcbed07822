"""RISE edits on GSM8K reference solutions: what share each editor's edits keep, and why the rest drop.

`rules` edits every one of `--rules` train references with the rule-based injector (no model), one edit
a solution; `llm` has the real model (the demo's engine, SmolLM2-135M by default) edit `--llm` references
per guided-decoding setting, with no rule fallback, so its own kept share is measured. Elapsed time
per run is printed beside the counts.

    python bench/rise.py [--rules 200] [--llm 48] [--modes step_then_continue] [--constrained template line]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT.parent / "shared" / "data" / "gsm8k" / "train.jsonl"


def _report(name: str, edits, seconds: float) -> None:
    import polars as pl

    from prefmill.tasks.stats import rise_stats

    stats = rise_stats(edits)
    print(f"{name}: edits={stats['edits']} kept={stats['kept']} kept_share={stats['kept_share'] or 0:.3f} "
          f"seconds={seconds:.1f} dropped={stats['dropped']}")
    print("  by error type: " + ", ".join(f"{t}={c['kept']}/{c['edits']}" for t, c in stats["by_error_type"].items()))
    shares = edits.filter(pl.col("keep"))["changed_share"]
    if shares.len():
        print(f"  changed share of the edited step (kept): mean={shares.mean():.3f} max={shares.max():.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=int, default=200, help="references edited by the rule-based injector (0: skip)")
    parser.add_argument("--llm", type=int, default=48, help="references edited by the real model per setting (0: skip)")
    parser.add_argument("--modes", nargs="+", default=["step_then_continue"], choices=["step_then_continue", "edit_only"])
    parser.add_argument("--constrained", nargs="+", default=["template", "line"], choices=["template", "line", "off"])
    parser.add_argument("--source", default=str(TRAIN))
    args = parser.parse_args()

    import polars as pl

    from prefmill.config import GenerateConfig, RiseConfig, SourceConfig, VerifyConfig, load_config
    from prefmill.sources import load_prompts
    from prefmill.tasks.sampling.generate import build_messages
    from prefmill.tasks.rise.inject import inject

    def references(limit: int):
        """Prompts, and samples that are all wrong, so the reference is the solution edited."""
        prompts = load_prompts(SourceConfig(path=args.source, limit=limit))
        samples = pl.DataFrame({
            "sample_id": prompts["prompt_id"] + "-0", "prompt_id": prompts["prompt_id"], "sample_index": 0,
            "prompt": [list(build_messages(q, cfg=GenerateConfig())) for q in prompts["question"]],
            "completion": "", "mean_logprob": None, "engine": "none", "error": None, "correct": False,
            "extracted": None, "reference_answer": prompts["reference_answer"],
        }, schema_overrides={"mean_logprob": pl.Float64, "extracted": pl.String, "error": pl.String})
        return samples, prompts

    verify_cfg = VerifyConfig()
    if args.rules:
        samples, prompts = references(args.rules)
        start = time.perf_counter()
        edits = inject(samples, prompts, engine=None, cfg=RiseConfig(editor="rules", use_reference=True), verify_cfg=verify_cfg)
        _report(f"rules n={args.rules}", edits, time.perf_counter() - start)
    if args.llm:
        from prefmill.engines import engine_for

        demo = load_config(ROOT / "configs" / "demo.yaml")
        engine = engine_for(demo.engine)
        samples, prompts = references(args.llm)
        for mode in args.modes:
            for constrained in args.constrained:
                cfg = demo.rise.model_copy(update={"mode": mode, "constrained": constrained, "rules_fallback": False,
                                                   "use_reference": True})
                start = time.perf_counter()
                edits = inject(samples, prompts, engine=engine, cfg=cfg, verify_cfg=verify_cfg)
                _report(f"llm {engine.fingerprint} mode={mode} constrained={constrained} n={args.llm}",
                        edits, time.perf_counter() - start)


if __name__ == "__main__":
    main()
