"""Answer verification (prefmill.answers) on GSM8K and on the hand-checked MATH-style catalogue.

(a) GSM8K test: every reference solution judged against its own final answer (must be correct) and against
    the final answer of the next row (must be incorrect unless the two answers are the same number; never
    unparsable). (b) tests/test_answers.py: CATALOGUE pairs, the candidate boxed in a model-style solution and
    the reference boxed in a MATH-style one (as test_verdict_through_boxed_solutions), and SOLUTIONS, whole
    solutions as written; agreement = judge() gives the hand-checked verdict with no verify_error. (c) time
    per 1,000 judge() calls, math-verify's parse cache cleared first (cold) and again on a second pass (warm).

Columns: `n` judgements, `agree` share with the expected verdict (and no verify_error), `unparsable` share
whose verify_error is unparsable_answer or no_answer_found, `ms/1000` wall time per 1,000 judgements (cold).
Last line: `verify gsm8k_unparsable=.. gsm8k_self_agreement=.. catalogue_agreement=.. catalogue_unparsable=..
ms_per_1000=..` (gsm8k_unparsable over self and next-row judgements; catalogue over pairs and solutions;
ms_per_1000 over every cold judgement).

    python -m bench.verify [--gsm8k PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from decimal import Decimal, InvalidOperation
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/verify.py`: the catalogue lives in tests/
    sys.path.insert(0, str(ROOT))

from prefmill.answers import NO_ANSWER_FOUND, UNPARSABLE_ANSWER, _parsed, judge, reference_final_answer  # noqa: E402
from tests.test_answers import CATALOGUE, SOLUTIONS, boxed_reference, boxed_solution  # noqa: E402

GSM8K_TEST = ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
UNPARSABLE = {UNPARSABLE_ANSWER, NO_ANSWER_FOUND}


def _same_number(a: str | None, b: str | None) -> bool:
    try:
        return a is not None and b is not None and Decimal(a) == Decimal(b)
    except InvalidOperation:
        return a == b


def _run(cases: list[tuple[str, str | None, bool]]) -> tuple[list[tuple], float]:
    """judge() on (solution, reference answer, expected) cases: their verdicts and the seconds taken."""
    started = time.perf_counter()
    verdicts = [judge(solution, reference) for solution, reference, _ in cases]
    return verdicts, time.perf_counter() - started


def _score(cases, verdicts) -> dict:
    n = len(cases)
    agree = sum(v[1] is expected and v[2] is None for (_, _, expected), v in zip(cases, verdicts))
    unparsable = sum(v[2] in UNPARSABLE for v in verdicts)
    return {"n": n, "agree": agree / n, "unparsable": unparsable / n,
            "errors": Counter(v[2] for v in verdicts if v[2] is not None)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gsm8k", type=Path, default=GSM8K_TEST)
    args = parser.parse_args(argv)

    rows = [json.loads(line) for line in args.gsm8k.read_text().splitlines() if line.strip()]
    solutions = [r["answer"] for r in rows]
    finals = [reference_final_answer(s) for s in solutions]
    nxt = finals[1:] + finals[:1]
    suites = {
        "gsm8k self": [(s, f, True) for s, f in zip(solutions, finals)],
        "gsm8k next row": [(s, g, _same_number(f, g)) for s, f, g in zip(solutions, finals, nxt)],
        "catalogue pairs": [(boxed_solution(c), reference_final_answer(boxed_reference(r)), v) for r, c, v in CATALOGUE],
        "catalogue solutions": [(s, reference_final_answer(r), v) for r, s, v in SOLUTIONS],
    }

    _parsed.cache_clear()
    cold = {name: _run(cases) for name, cases in suites.items()}
    warm = {name: _run(cases)[1] for name, cases in suites.items()}  # the references' parses now cached

    scores = {name: _score(suites[name], verdicts) for name, (verdicts, _) in cold.items()}
    for group, members in (("gsm8k", ["gsm8k self", "gsm8k next row"]),
                           ("catalogue", ["catalogue pairs", "catalogue solutions"])):
        cases = [c for m in members for c in suites[m]]
        verdicts = [v for m in members for v in cold[m][0]]
        scores[f"{group} (all)"] = _score(cases, verdicts)
        cold[f"{group} (all)"] = (verdicts, sum(cold[m][1] for m in members))
        warm[f"{group} (all)"] = sum(warm[m] for m in members)

    head = f"{'suite':22s} {'n':>6s} {'agree':>7s} {'unparsable':>10s} {'ms/1000':>9s} {'warm':>9s}  errors"
    print(head)
    print("-" * len(head))
    for name, s in scores.items():
        seconds = cold[name][1]
        errors = ", ".join(f"{k}={n}" for k, n in s["errors"].most_common()) or "-"
        print(f"{name:22s} {s['n']:6d} {s['agree']:7.4f} {s['unparsable']:10.4f} {1e6 * seconds / s['n']:9.1f} "
              f"{1e6 * warm[name] / s['n']:9.1f}  {errors}")

    same = sum(expected for _, _, expected in suites["gsm8k next row"])
    print(f"\nnext-row pairs whose two final answers are the same number (expected correct): {same}")
    for name, cases in suites.items():
        misses = [(c, v) for c, v in zip(cases, cold[name][0]) if not (v[1] is c[2] and v[2] is None)]
        for (solution, reference, expected), (extracted, correct, error) in misses[:10]:
            print(f"  miss [{name}] reference={reference!r} extracted={extracted!r} expected={expected} "
                  f"got={correct} error={error} solution={solution[-80:]!r}")

    gsm, cat = scores["gsm8k (all)"], scores["catalogue (all)"]
    n_all = gsm["n"] + cat["n"]
    ms = 1e6 * (cold["gsm8k (all)"][1] + cold["catalogue (all)"][1]) / n_all
    print(f"verify gsm8k_unparsable={gsm['unparsable']:.4f} gsm8k_self_agreement={scores['gsm8k self']['agree']:.4f} "
          f"catalogue_agreement={cat['agree']:.4f} catalogue_unparsable={cat['unparsable']:.4f} ms_per_1000={ms:.1f}")


if __name__ == "__main__":
    main()
