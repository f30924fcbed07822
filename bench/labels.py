"""Step labels against a known truth: MC (Math-Shepherd) at k = 1..16 and OmegaPRM at several rollout budgets,
each with and without the consensus filter, on the ground-truth chain simulator.

Why: bench/labelling.py's policy never lets a wrong prefix reach the right answer and runs where MC is
exact, so it cannot see label noise. `prefmill.engines.chain_simulator` gives every step prefix its exact
probability of ending right and every chain its true first error, with lucky recoveries (a wrong prefix
that still ends right, the main noise of MC labels per Zhang et al. 2025) and correct prefixes whose
rollouts go wrong later. The labellers run as they are; only the engine is simulated.

Columns: `err_acc` first-error accuracy on chains with a wrong step, `ok_acc` accuracy on chains without,
`f1` their harmonic mean (ProcessBench; a chain's predicted first error is its first False label, "none"
when all are True; a chain left without labels, OmegaPRM's `budget`/`unsolved`, is a miss), `step_acc`
step labels equal to the truth, `pos` share of True step labels (truth on the same steps in brackets),
`mae`/`bias` soft values minus the exact prefix values (steps that have a value), `mono` label lists going
False then True, `fe_ok` chains whose final answer verifies yet get a first error, `tokens` completion
num_tokens generated (rollouts; + the judge with consensus), `samples` rollouts generated. `+cons` rows
score only the chains `consensus_filter` keeps (`chains` = kept).
Last line: `labels f1_mc8=.. f1_omega=.. token_ratio=.. mae_mc8=.. mae_omega=.. monotone_violations=.. cache_hits=..`

    python -m bench.labels [--questions 200] [--chains 4] [--p-step 0.15] [--luck 0.15] [--judge-accuracy 0.75]
                           [--variety 0.5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT.parent / "shared" / "data" / "gsm8k" / "train.jsonl"
KS = (1, 2, 4, 8, 16)
BUDGETS = (16, 32, 64, 200)
PAPER_BUDGET = 200  # OmegaConfig's default with the paper's k = 8: the search is not cut short (see the status line)
BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
SAMPLING = {"max_tokens": 512, "temperature": 0.8, "top_p": 1.0}  # one setting for MC and OmegaPRM: cacheable


class Meter:
    """Wraps an engine: what it generated, by purpose, and the rollouts' partial turns (a list per sample)."""

    def __init__(self, engine) -> None:
        self.engine, self.fingerprint = engine, engine.fingerprint
        self.tokens: Counter[str] = Counter()
        self.samples: Counter[str] = Counter()
        self.partials: list[str] = []

    def generate(self, requests):
        results = self.engine.generate(requests)
        by_id = {r.request_id: r for r in results}
        for request in requests:
            for c in by_id[request.request_id].completions:
                self.tokens[request.purpose] += c.num_tokens
                self.samples[request.purpose] += 1
                if request.purpose == "rollout":
                    self.partials.append(request.messages[-1]["content"])
        return results


def _predicted(labels: Sequence[bool] | None) -> int | str | None:
    """First False label, "none" when all are True, None when the chain has no labels."""
    if labels is None:
        return None
    return next((k for k, label in enumerate(labels) if label is False), "none")


def _score(out, truth: dict, tokens: int, samples: int) -> dict:
    """The table's numbers for one labelled table (rows of chains in `truth` only)."""
    err, ok, steps_right, steps, pos, pos_true, mono, fe_ok = [0, 0], [0, 0], 0, 0, 0, 0, 0, 0
    pairs: list[tuple[float, float]] = []
    for row in out.iter_rows(named=True):
        if row["chain_id"] not in truth:
            continue
        chain, exact = truth[row["chain_id"]]
        labels, guess = row["labels"], _predicted(row["labels"])
        e = chain.first_error
        if e is None:
            ok[0], ok[1] = ok[0] + (guess == "none"), ok[1] + 1
        else:
            err[0], err[1] = err[0] + (guess == e), err[1] + 1
        fe_ok += chain.final_correct and row["first_error_step"] is not None
        for k, label in enumerate(labels or []):
            really = e is None or k < e
            steps, steps_right, pos, pos_true = steps + 1, steps_right + (label == really), pos + label, pos_true + really
        mono += any(a is False and b is True for i, a in enumerate(labels or []) for b in labels[i + 1 :])
        pairs += [(v, exact[k]) for k, v in enumerate(row["values"] or []) if v is not None]
    err_acc, ok_acc = err[0] / max(err[1], 1), ok[0] / max(ok[1], 1)
    return {
        "chains": err[1] + ok[1], "err_acc": err_acc, "ok_acc": ok_acc,
        "f1": 2 * err_acc * ok_acc / (err_acc + ok_acc) if err_acc + ok_acc else 0.0,
        "step_acc": steps_right / max(steps, 1), "pos": pos / max(steps, 1), "pos_true": pos_true / max(steps, 1),
        "mae": sum(abs(v - t) for v, t in pairs) / max(len(pairs), 1),
        "bias": sum(v - t for v, t in pairs) / max(len(pairs), 1), "mono": mono, "fe_ok": fe_ok,
        "tokens": tokens, "samples": samples, "pairs": pairs,
    }


def _groups(out, truth: dict, nodes: dict | None = None) -> dict[str, list[tuple[float, float]]]:
    """(value, exact value) of every valued step before the complete solution, by whether its prefix truly
    holds a wrong step and, given the tree's nodes ((prompt_id, prefix) -> (n, correct)), by the node's n
    and whether the chain's own answer was right (OmegaPRM never searches those)."""
    groups: dict[str, list[tuple[float, float]]] = {}
    for row in out.iter_rows(named=True):
        if row["chain_id"] not in truth:
            continue
        chain, exact = truth[row["chain_id"]]
        for k, v in enumerate(row["values"] or []):
            if v is None or k == len(chain.steps) - 1:
                continue
            name = "right prefix" if chain.first_error is None or k < chain.first_error else "wrong prefix"
            if nodes is not None:
                n = nodes[(row["prompt_id"], "\n".join(row["completions"][: k + 1]) + "\n")][0]
                searched = "chain ended wrong" if not chain.final_correct else "chain ended right"
                name = f"{'n=1' if n == 1 else '2<=n<8' if n < 8 else 'n>=8'}, {searched}, {name}"
            groups.setdefault(name, []).append((v, exact[k]))
    return groups


def _print_groups(title: str, groups: dict[str, list[tuple[float, float]]]) -> None:
    print(f"  {title}:")
    for name, p in sorted(groups.items()):
        print(f"    {name:42s} steps={len(p):5d} value={sum(v for v, _ in p) / len(p):.3f} "
              f"exact={sum(t for _, t in p) / len(p):.3f}")


def _print_table(results: dict[str, dict]) -> None:
    head = (f"{'method':16s} {'chains':>6s} {'err_acc':>7s} {'ok_acc':>6s} {'f1':>6s} {'step_acc':>8s} "
            f"{'pos (true)':>13s} {'mae':>6s} {'bias':>7s} {'mono':>5s} {'fe_ok':>5s} {'tokens':>8s} {'samples':>7s}")
    print(head)
    print("-" * len(head))
    for name, s in results.items():
        print(f"{name:16s} {s['chains']:6d} {s['err_acc']:7.3f} {s['ok_acc']:6.3f} {s['f1']:6.3f} {s['step_acc']:8.3f} "
              f"{s['pos']:6.3f} ({s['pos_true']:.3f}) {s['mae']:6.3f} {s['bias']:+7.3f} {s['mono']:5d} {s['fe_ok']:5d} "
              f"{s['tokens']:8d} {s['samples']:7d}")


def _print_calibration(results: dict[str, dict], names: Sequence[str]) -> None:
    print("\ncalibration: steps per bin of predicted value, and their mean exact value (a calibrated label: "
          "the mean value falls in its bin)")
    print(f"{'bin':12s}" + "".join(f"{n:>22s}" for n in names))
    for lo, hi in zip(BINS, BINS[1:]):
        cells = []
        for name in names:
            inside = [t for v, t in results[name]["pairs"] if lo <= v < hi or (hi == 1.0 and v == 1.0)]
            cells.append(f"n={len(inside):5d} true={sum(inside) / len(inside):.3f}" if inside else f"{'n=0':>22s}")
        print(f"[{lo:.1f},{hi:.1f}{']' if hi == 1.0 else ')'}  " + "".join(f"{c:>22s}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--chains", type=int, default=4, help="chains per question (OmegaPRM searches a tree per question)")
    parser.add_argument("--p-step", type=float, default=0.15)
    parser.add_argument("--luck", type=float, default=0.15)
    parser.add_argument("--judge-accuracy", type=float, default=0.75)
    parser.add_argument("--variety", type=float, default=0.5, help="chance a written step begins with an opener")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--source", default=str(TRAIN))
    args = parser.parse_args()

    import polars as pl

    from prefmill.config import GenerateConfig, JudgeConfig, VerifyConfig
    from prefmill.engines.cached import CachingEngine, RolloutCache
    from prefmill.engines.chain_simulator import ChainSimulator, SimulatorConfig
    from prefmill.engines.scripted import ScriptedEngine
    from prefmill.tasks.process.consensus import consensus_filter
    from prefmill.tasks.process.mc_label import mc_label
    from prefmill.tasks.process.omegaprm import OmegaConfig, omega_label
    from prefmill.tasks.process.steps import steps_of
    from prefmill.tasks.sampling.generate import build_messages

    started = time.perf_counter()
    with open(args.source) as fh:
        rows = [json.loads(next(fh)) for _ in range(args.questions)]
    cfg = SimulatorConfig(p_step=args.p_step, luck=args.luck, judge_accuracy=args.judge_accuracy, variety=args.variety)
    sim = ChainSimulator({r["question"]: r["answer"] for r in rows}, cfg)
    chains, truth = [], {}
    for i, r in enumerate(rows):
        for j in range(args.chains):
            chain = sim.chain(r["question"], j)
            steps = steps_of(chain.text)
            chains.append({"chain_id": f"q{i}-c{j}", "prompt_id": f"q{i}", "steps": steps,
                           "prompt": list(build_messages(r["question"], cfg=GenerateConfig()))})
            truth[f"q{i}-c{j}"] = (chain, sim.values(r["question"], steps))
    chains = pl.DataFrame(chains)
    references = pl.DataFrame({"prompt_id": [f"q{i}" for i in range(len(rows))], "reference": [r["answer"] for r in rows]})
    verify, judge_cfg = VerifyConfig(), JudgeConfig()
    n_steps = chains["steps"].list.len()
    wrong = [c for c, _ in truth.values() if c.first_error is not None]
    print(f"simulator p_step={cfg.p_step} luck={cfg.luck} judge_accuracy={cfg.judge_accuracy} variety={cfg.variety}: "
          f"{chains.height} chains, "
          f"{len(rows)} questions, steps mean={n_steps.mean():.2f} max={n_steps.max()}; with a wrong step "
          f"{len(wrong)}, of them ending right (lucky) {sum(c.final_correct for c in wrong)}; final answer right "
          f"{sum(c.final_correct for c, _ in truth.values())}")

    def engine() -> Meter:
        return Meter(ScriptedEngine(sim, name="chain-simulator"))

    results: dict[str, dict] = {}
    meters: dict[str, Meter] = {}
    statuses: dict[str, Counter] = {}
    outputs: dict[str, pl.DataFrame] = {}
    nodes: dict[tuple[str, str], tuple[int, int]] = {}  # the paper-budget tree, from omega_label's checkpoint callback

    def keep_nodes(prompt_id: str, result: dict) -> None:
        nodes.update({(prompt_id, key): (n, correct) for key, n, correct in result["nodes"]})

    def record(name: str, out, meter: Meter) -> None:
        meters[name] = meter
        results[name] = _score(out, truth, meter.tokens["rollout"], meter.samples["rollout"])
        judged = consensus_filter(out, cfg=judge_cfg, engine=(judge := engine()))
        results[f"{name}+cons"] = _score(judged.filter(pl.col("keep")), truth,
                                         meter.tokens["rollout"] + judge.tokens["first_error"], meter.samples["rollout"])

    for k in KS:
        meter = engine()
        outputs[f"mc@{k}"] = mc_label(chains, references, engine=meter, rollouts=k, seed=args.seed, verify_cfg=verify,
                                      **SAMPLING)
        record(f"mc@{k}", outputs[f"mc@{k}"], meter)
    meter = engine()  # MC@8 without the witness rule (process.witness: false): ProcessBench's view of lucky chains
    record("mc@8-nowitness", mc_label(chains, references, engine=meter, rollouts=8, seed=args.seed, verify_cfg=verify,
                                      witness=False, **SAMPLING), meter)
    omega_cfgs = {b: OmegaConfig(rollouts_per_check=8, budget=b, seed=args.seed, **SAMPLING) for b in BUDGETS}
    for b, omega_cfg in omega_cfgs.items():
        meter = engine()
        out = omega_label(chains, references, engine=meter, cfg=omega_cfg, verify_cfg=verify,
                          on_question_done=keep_nodes if b == PAPER_BUDGET else None)
        outputs[f"omega@{b}"] = out
        statuses[f"omega@{b}"] = Counter(out["status"].to_list())
        record(f"omega@{b}", out, meter)

    # One store, the methods one after another: what OmegaPRM gets from MC@8's rollouts.
    with tempfile.TemporaryDirectory(prefix="bench-labels-cache-") as folder:
        cached = CachingEngine(ScriptedEngine(sim, name="chain-simulator"), RolloutCache(Path(folder)))
        mc_label(chains, references, engine=cached, rollouts=8, seed=args.seed, verify_cfg=verify, **SAMPLING)
        hits, misses = cached.hits, cached.misses
        omega_label(chains, references, engine=cached, cfg=omega_cfgs[PAPER_BUDGET], verify_cfg=verify)
        cache_hits, omega_samples = cached.hits - hits, cached.hits - hits + cached.misses - misses
        before = cached.hits
        mc_label(chains, references, engine=cached, rollouts=1, seed=args.seed, verify_cfg=verify, **SAMPLING)
        sanity_hits = cached.hits - before

    paper = f"omega@{PAPER_BUDGET}"
    print(f"\nMC at k = {', '.join(map(str, KS))}; OmegaPRM k=8 at rollout budgets {', '.join(map(str, BUDGETS))} per "
          f"question; {paper} is the one closest to the paper's setting (k=8, search not cut by the budget): "
          f"f1_omega and mae_omega come from it\n")
    _print_table(results)
    print("\nOmegaPRM chain status: " + "; ".join(f"{n}: " + ", ".join(f"{s}={c}" for s, c in sorted(st.items()))
                                           for n, st in statuses.items()))
    _print_calibration(results, ["mc@1", "mc@8", "mc@16", paper])

    mc8, om = results["mc@8"], results[paper]
    zero = [t for v, t in om["pairs"] if v == 0.0]
    complete = sum(any(line.startswith("####") for line in p.split("\n")) for p in meters["mc@8"].partials)
    mc_prefixes = set(meters["mc@8"].partials)
    shareable = sum(p in mc_prefixes for p in meters[paper].partials)
    print("\ndefects the numbers show:")
    print(f"- {paper} soft values: mae={om['mae']:.3f} bias={om['bias']:+.3f} vs mc@8 mae={mc8['mae']:.3f} "
          f"bias={mc8['bias']:+.3f}; {len(zero)} steps valued exactly 0.0 have mean exact value "
          f"{sum(zero) / max(len(zero), 1):.3f}, {sum(t >= 0.5 for t in zero)} of them >= 0.5; steps before the "
          f"complete solution, mean value vs mean exact value:")
    _print_groups("mc@8", _groups(outputs["mc@8"], truth))
    _print_groups(paper, _groups(outputs[paper], truth, nodes))
    print("- MC hard labels going False then True: " + ", ".join(f"mc@{k}={results[f'mc@{k}']['mono']}" for k in KS))
    lucky = {c for c, (chain, _) in truth.items() if chain.final_correct and chain.first_error is not None}
    right = sum(r["first_error_step"] is not None and truth[r["chain_id"]][0].first_error is None
                for r in outputs["mc@8"].iter_rows(named=True))
    print("- chains whose final answer verifies yet get a first_error_step: "
          + ", ".join(f"mc@{k}={results[f'mc@{k}']['fe_ok']}" for k in KS) + f", {paper}={om['fe_ok']}; at mc@8 "
          f"{right} are truly right chains, {mc8['fe_ok'] - right} lucky ones (a wrong step, right answer: "
          f"{len(lucky)} chains, all labelled all-True by OmegaPRM, which never searches them)")
    print(f"- mc@8 rollouts from the complete solution (they only re-read its answer): {complete} of "
          f"{mc8['samples']} ({complete / max(mc8['samples'], 1):.1%})")
    print(f"- one rollout store, mc@8 then {paper}: {paper} cache hits={cache_hits} of {omega_samples} samples, though "
          f"{shareable} of its rollouts start from a prefix mc@8 rolled out with the same sampling settings; "
          f"sanity, mc@1 after them: hits={sanity_hits} of {chains['steps'].list.len().sum()}")
    print(f"runtime {time.perf_counter() - started:.1f}s")
    print(f"labels f1_mc8={mc8['f1']:.3f} f1_omega={om['f1']:.3f} token_ratio={mc8['tokens'] / max(om['tokens'], 1):.2f} "
          f"mae_mc8={mc8['mae']:.3f} mae_omega={om['mae']:.3f} monotone_violations={mc8['mono']} cache_hits={cache_hits}")


if __name__ == "__main__":
    main()
