"""Consensus filter: an LLM judge names a chain's first wrong step; keep MC labels only where they agree.

"The Lessons of Developing Process Reward Models in Mathematical Reasoning" (Zhang et al. 2025) finds
MC estimation (Math-Shepherd) noisy on its own and keeps a training chain only when MC estimation and
an LLM-as-judge agree on where the first error is, or both find none. This stage asks any `Engine`
for the first wrong step of every chain (one `generate` call), parses the answer, and adds `keep` and
`drop_reason` to the labelled table; no row is ever deleted.

Input `chains` / `labelled`: the output of `tasks.mc_label` (or OmegaPRM): `chain_id`, `prompt` (chat
messages), `completions` (steps), `labels`, `first_error_step` (0-based or null).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Literal

import polars as pl

from prefmill.config import JudgeConfig
from prefmill.engines.base import Engine
from prefmill.errors import InputError
from prefmill.schemas.tables import FIRST_ERROR_VERDICTS
from prefmill.schemas.validate import polars_schema
from prefmill.tasks.judging import (
    EMPTY_OUTPUT, check_parse_failures, closing, generate_all, judge_outputs, judge_request, question_of,
)


# parse_error values besides EMPTY_OUTPUT and ENGINE_ERROR (tasks.judging).
NO_ANSWER = "no_answer"
OUT_OF_RANGE = "out_of_range"  # a step number outside 1..n_steps (0, -1, 12 of 5)
AMBIGUOUS = "ambiguous"  # "First error: 2 or 3"
NO_MAJORITY = "no_majority"  # judge samples split evenly between answers (cfg.samples > 1)

# drop_reason values
JUDGE_DISAGREES = "judge_disagrees"
JUDGE_UNPARSABLE = "judge_unparsable"  # no judge verdict: unparsable outputs, engine errors or a tied vote
MC_INCOMPLETE = "mc_incomplete"  # MC found no False label but a step has no label (engine failure)

# With `cfg.constrained`, guided decoding makes the output a one-line rationale then the answer line.
FIRST_ERROR_LINE = r"First error: (none|[1-9][0-9]?)"

# "First error: 3", "**First error:** Step 3", "The first wrong step is step 2", "first mistake occurs in
# step 4", "First error: none", "First error: no errors". The last labelled answer wins; a bare number
# is never taken (it may be a number from the problem).
_FIRST_ERROR = re.compile(
    r"(?i:\bfirst[ \t]+(?:error|mistake|(?:wrong|incorrect|erroneous|flawed)[ \t]+step))\b[ \t*_]*"
    r"(?:[:=]|(?i:is|was|occurs|appears|at|in)\b)"
    r"[ \t*_\[(]*(?i:(?:occurs[ \t]+)?(?:in|at|on)[ \t]+)?(?:(?i:step)[ \t]*)?(?:#[ \t]*)?"
    r"(?:(?P<none>(?i:none|no[ \t]+(?:errors?|mistakes?|wrong[ \t]+steps?)|n/a))\b|(?P<num>-?[0-9]+)(?![0-9.]*[0-9]))"
)
_OTHER_STEP = re.compile(  # "2 or 3", "2, 3", "2-3", "none or 4"
    r"[ \t*_\])]*(?:,|/|&|-|(?i:or|and|to)\b)[ \t]*(?:(?i:step)[ \t]*)?[0-9]"
)


def build_first_error_prompt(question: str, steps: list[str], *, rationale: bool = False) -> str:
    """The judge prompt: the problem, the numbered steps, and the exact answer line to end with."""
    numbered = "\n".join(f"Step {i}: {step}" for i, step in enumerate(steps, start=1))
    return (
        "Below are a math problem and a step-by-step solution. Check the steps in order and find the "
        "first step that is wrong: a miscalculation, a wrong fact, a misreading of the problem, or a "
        "step that does not follow from the steps before it. Later steps that only carry an earlier "
        "error forward do not count.\n\n"
        f"[Problem]\n{question}\n\n[Solution]\n{numbered}\n[End of Solution]\n\n"
        + closing("`First error: <n>` (the number of the first wrong step) or `First error: none` if every "
                  "step is correct", rationale=rationale)
    )


def parse_first_error(text: str | None, n_steps: int) -> tuple[int | Literal["none"] | None, str | None]:
    """(0-based index of the first wrong step | "none" | None, parse_error); never raises.

    The last labelled answer wins ("First error: 3", "The first wrong step is step 3", "First error:
    none"). Step numbers in the text are 1-based, as the prompt numbers them; 0, negatives and numbers
    above `n_steps` are `out_of_range`; an answer naming two steps ("2 or 3") is `ambiguous`; text
    without a labelled answer is `no_answer`.
    """
    if not text or not text.strip():
        return None, EMPTY_OUTPUT
    found = list(_FIRST_ERROR.finditer(text))
    if not found:
        return None, NO_ANSWER
    match = found[-1]
    if _OTHER_STEP.match(text, match.end()):
        return None, AMBIGUOUS
    if match.group("none"):
        return "none", None
    step = int(match.group("num"))
    if not 1 <= step <= n_steps:
        return None, OUT_OF_RANGE
    return step - 1, None


def _majority(answers: list[int | str | None]) -> tuple[int | str | None, bool]:
    """(the most common usable answer, tied); None when no answer is usable or the top answers tie."""
    ranked = Counter(a for a in answers if a is not None).most_common()
    if not ranked:
        return None, False
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None, True
    return ranked[0][0], False


JUDGED_COLUMNS = polars_schema(FIRST_ERROR_VERDICTS)


def judge_first_errors(chains: pl.DataFrame, *, engine: Engine, cfg: JudgeConfig) -> pl.DataFrame:
    """Ask the judge for every chain's first wrong step, in one `engine.generate` call.

    One request per chain (`request_id = chain_id`), `cfg.samples` judge samples each, guided by
    `FIRST_ERROR_LINE` when `cfg.constrained`. Output, one row per chain in input order:
    `chain_id`; `judge_first_error` (0-based step, null unless the verdict names a step);
    `judge_says_none` (True: no wrong step, False: a step, null: no verdict); `judge_parse_failures`
    (unusable judge samples); `judge_parse_error` (the first sample's error, or `no_majority` when the
    usable answers tie); `judge_raw` (every raw output, null for an engine failure); `judge_engine`.
    With several samples the verdict is the most common usable answer.

    Raises `EngineError` when the share of unusable outputs exceeds `cfg.max_parse_fail`.
    """
    if missing := [c for c in ("chain_id", "prompt", "completions") if c not in chains.columns]:
        raise InputError(f"consensus: the chains table lacks column(s) {missing}; it has {chains.columns}",
                         hint="pass the output of tasks.mc_label (chain_id, prompt, completions, ...)")
    if chains["chain_id"].n_unique() != chains.height:
        raise InputError("consensus: `chain_id` values repeat; request ids must be unique", hint="give every chain its own id")
    requests, sizes = [], []
    for chain_id, prompt, steps in chains.select("chain_id", "prompt", "completions").iter_rows():
        if not steps:
            raise InputError(f"consensus: chain {chain_id!r} has no steps", hint="drop chains without steps before judging")
        question = question_of(prompt, chain_id, stage="consensus")
        requests.append(judge_request(chain_id, build_first_error_prompt(question, steps, rationale=cfg.rationale), cfg,
                                      line=FIRST_ERROR_LINE,
                                      purpose="first_error", inputs={"question": question, "steps": list(steps)}))
        sizes.append(len(steps))
    results = generate_all(engine, requests, stage="consensus")
    rows, every = [], []
    for request, n_steps in zip(requests, sizes):
        outputs = judge_outputs(request, results[request.request_id], lambda text: parse_first_error(text, n_steps))
        every += outputs
        verdict, tied = _majority([p[0] if p else None for _, p, _ in outputs])
        errors = [e for _, _, e in outputs if e is not None]
        rows.append({
            "chain_id": request.request_id,
            "judge_first_error": verdict if isinstance(verdict, int) else None,
            "judge_says_none": None if verdict is None else verdict == "none",
            "judge_parse_failures": len(errors),
            "judge_parse_error": NO_MAJORITY if tied else errors[0] if errors else None,
            "judge_raw": [raw for raw, _, _ in outputs],
            "judge_engine": engine.fingerprint,
        })
    check_parse_failures("first_error", every, cfg)
    return pl.DataFrame(rows, schema=JUDGED_COLUMNS)


_FROM_JUDGE = ("judge_first_error", "judge_says_none", "judge_parse_error")


def consensus(labelled: pl.DataFrame, judged: pl.DataFrame) -> pl.DataFrame:
    """`labelled` (input order, every row) plus the judge's verdict, `keep` and `drop_reason`.

    keep when the judge's first error equals `first_error_step`, or MC found no wrong step (every
    label True) and the judge says none. Otherwise `drop_reason` is `judge_unparsable` (no judge
    verdict), `mc_incomplete` (no False label, but a step has a null label: MC could not say whether
    the chain is right), or `judge_disagrees`. A `first_error_step` after a null label is not
    defined by `tasks.mc_label` (it is null there) and reads as `mc_incomplete`.
    """
    needed = {"labelled": (labelled, ("chain_id", "labels", "first_error_step")), "judged": (judged, ("chain_id", *_FROM_JUDGE))}
    for name, (table, columns) in needed.items():
        if missing := [c for c in columns if c not in table.columns]:
            raise InputError(f"consensus: the {name} table lacks column(s) {missing}; it has {table.columns}",
                             hint="labelled comes from tasks.mc_label, judged from judge_first_errors")
    if clash := [c for c in (*_FROM_JUDGE, "keep", "drop_reason") if c in labelled.columns]:
        raise InputError(f"consensus: the labelled table already has column(s) {clash}",
                         hint="pass the labels as tasks.mc_label wrote them, not an already filtered table")
    if judged["chain_id"].n_unique() != judged.height:
        raise InputError("consensus: `chain_id` values repeat in the judged table", hint="judge each chain once")
    if unjudged := sorted(set(labelled["chain_id"].to_list()) - set(judged["chain_id"].to_list())):
        raise InputError(f"consensus: {len(unjudged)} chain(s) have no judge row, e.g. {unjudged[:5]}",
                         hint="judge the same chains table that is filtered")
    joined = labelled.join(judged.select("chain_id", *_FROM_JUDGE), on="chain_id", how="left", maintain_order="left")
    mc_none = pl.col("first_error_step").is_null()
    mc_complete = pl.col("labels").list.eval(pl.element().is_not_null()).list.all()
    no_verdict = pl.col("judge_says_none").is_null()
    agree = (
        (mc_none & mc_complete & pl.col("judge_says_none").eq_missing(True))
        | (mc_none.not_() & pl.col("judge_first_error").eq_missing(pl.col("first_error_step")))
    ).fill_null(False)
    reason = (
        pl.when(no_verdict).then(pl.lit(JUDGE_UNPARSABLE))
        .when(mc_none & mc_complete.not_()).then(pl.lit(MC_INCOMPLETE))
        .when(agree.not_()).then(pl.lit(JUDGE_DISAGREES))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    return joined.with_columns(reason.alias("drop_reason")).with_columns(keep=pl.col("drop_reason").is_null())


def consensus_stats(filtered: pl.DataFrame) -> dict[str, float | int]:
    """Manifest stats of `consensus` output: chains, kept, kept_share, dropped_<reason> counts."""
    total = filtered.height
    dropped = {r: int((filtered["drop_reason"] == r).sum()) for r in (JUDGE_DISAGREES, JUDGE_UNPARSABLE, MC_INCOMPLETE)}
    kept = total - sum(dropped.values())  # what the judge kept (a later balance may drop some of it)
    stats: dict[str, float | int] = {"chains": total, "kept": kept, "kept_share": kept / total if total else 0.0}
    stats |= {f"dropped_{reason}": n for reason, n in dropped.items()}
    return stats


def consensus_filter(labelled: pl.DataFrame, chains: pl.DataFrame, *, cfg: JudgeConfig, engine: Engine) -> pl.DataFrame:
    """The judge names every labelled chain's first wrong step in its FULL solution (a labeller may cut
    a chain after its first error; the judge must see the final answer too); `consensus` keeps the
    labels it agrees with. Step numbers agree: the cut steps are a prefix of the full ones."""
    full = labelled.join(chains.select("chain_id", pl.col("steps").alias("_full")), on="chain_id", how="left",
                         maintain_order="left")
    shown = full.with_columns(completions=pl.coalesce("_full", "completions")).drop("_full")
    return consensus(labelled, judge_first_errors(shown, engine=engine, cfg=cfg))
