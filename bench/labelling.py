"""OmegaPRM (binary search over a shared tree) vs per-step MC (Math-Shepherd) on the same scripted chains.

Chains come from `gsm8k_chain_policy` (GSM8K train references, an error injected at a known step with
probability p_error; a correct prefix is continued correctly with probability q), so first-error accuracy
is measured against the truth. Tokens are the scripted engine's `num_tokens` of every rollout, summed.
Last line: `labelling token_ratio=<MC tokens / OmegaPRM tokens> accuracy_mc=<..> accuracy_omega=<..>`.

    python bench/labelling.py [--chains 100] [--per-question 1] [--p-error 0.7] [--q 0.7] [--rollouts 8]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT.parent / "shared" / "data" / "gsm8k" / "train.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chains", type=int, default=100)
    parser.add_argument("--per-question", type=int, default=4,
                        help="chains sampled per question (OmegaPRM searches a tree per question, as the paper does)")
    parser.add_argument("--p-error", type=float, default=0.7)
    parser.add_argument("--q", type=float, default=0.7)
    parser.add_argument("--rollouts", type=int, default=8, help="MC rollouts per step = OmegaPRM's k")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--source", default=str(TRAIN))
    args = parser.parse_args()

    import polars as pl

    from prefmill.config import GenerateConfig, VerifyConfig
    from prefmill.engines.scripted import ScriptedEngine
    from prefmill.engines.scripted_chains import gsm8k_chain_policy
    from prefmill.tasks.sampling.generate import build_messages
    from prefmill.tasks.process.mc_label import mc_label
    from prefmill.tasks.process.omegaprm import OmegaConfig, omega_label
    from prefmill.tasks.process.steps import steps_of

    questions = -(-args.chains // args.per_question)
    with open(args.source) as fh:
        rows = [json.loads(next(fh)) for _ in range(questions)]
    policy = gsm8k_chain_policy({r["question"]: r["answer"] for r in rows}, p_error=args.p_error, q=args.q)
    chains, truth = [], {}
    for i, r in enumerate(rows):
        for j in range(args.per_question):
            if len(chains) == args.chains:
                break
            text, error = policy.chain(r["question"], j)
            chains.append({"chain_id": f"q{i}-c{j}", "prompt_id": f"q{i}",
                           "prompt": list(build_messages(r["question"], cfg=GenerateConfig())), "steps": steps_of(text)})
            truth[f"q{i}-c{j}"] = error
    chains = pl.DataFrame(chains)
    references = pl.DataFrame({"prompt_id": [f"q{i}" for i in range(len(rows))], "reference": [r["answer"] for r in rows]})
    verify_cfg = VerifyConfig()
    steps = chains["steps"].list.len()
    print(f"chains={chains.height} questions={len(rows)} steps mean={steps.mean():.2f} min={steps.min()} "
          f"max={steps.max()} with_error={sum(e is not None for e in truth.values())} p_error={args.p_error} "
          f"q={args.q} k={args.rollouts}")

    def accuracy(out) -> float:
        return sum(truth[c] == f for c, f in zip(out["chain_id"], out["first_error_step"])) / out.height

    results = {}
    start = time.perf_counter()
    engine = ScriptedEngine(policy, name="chain")
    mc = mc_label(chains, references, engine=engine, rollouts=args.rollouts, max_tokens=512, temperature=0.8,
                  seed=args.seed, verify_cfg=verify_cfg)
    results["mc"] = (int(mc["rollout_tokens"].sum()), int(mc["rollout_counts"].list.sum().sum()), accuracy(mc),
                     engine.calls, time.perf_counter() - start)
    variants = {
        "omega": OmegaConfig(rollouts_per_check=args.rollouts, seed=args.seed),
        "omega_no_share": OmegaConfig(rollouts_per_check=args.rollouts, seed=args.seed, share_rollouts=False),
        "omega_no_early_stop": OmegaConfig(rollouts_per_check=args.rollouts, seed=args.seed, early_stop=False),
        "omega_lean(fb=1,split=.01)": OmegaConfig(rollouts_per_check=args.rollouts, seed=args.seed, first_batch=1,
                                                  split=0.01),
    }
    for name, cfg in variants.items():
        start = time.perf_counter()
        engine = ScriptedEngine(policy, name="chain")
        out = omega_label(chains, references, engine=engine, cfg=cfg, verify_cfg=verify_cfg)
        results[name] = (int(out["rollout_tokens"].sum()), int(out["rollouts"].sum()), accuracy(out), engine.calls,
                         time.perf_counter() - start)

    print(f"{'method':26s} {'tokens':>8s} {'rollouts':>9s} {'accuracy':>9s} {'calls':>6s} {'seconds':>8s} {'tok ratio':>9s}")
    for name, (tokens, rollouts, acc, calls, seconds) in results.items():
        print(f"{name:26s} {tokens:8d} {rollouts:9d} {acc:9.3f} {calls:6d} {seconds:8.2f} "
              f"{results['mc'][0] / max(tokens, 1):9.2f}")
    mc_tokens, omega = results["mc"][0], results["omega"]
    print(f"labelling token_ratio={mc_tokens / max(omega[0], 1):.2f} accuracy_mc={results['mc'][2]:.3f} "
          f"accuracy_omega={omega[2]:.3f}")


if __name__ == "__main__":
    main()
