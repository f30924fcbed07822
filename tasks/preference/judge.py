"""Judge: an LLM scores samples (pointwise, 1-10) or picks the better side of a pair (pairwise).

Pointwise follows UltraFeedback's rubric scoring (Cui et al. 2023), a rationale then the score, when
`judge.rationale` is on; by default the judge answers with the score line alone, which costs ~5
tokens instead of up to 256.
Pairwise asks twice with the responses swapped because judges favour a position ("Large Language
Models are not Fair Evaluators", Wang et al. 2023); only verdicts that survive the swap count. With no
separate judge engine the policy critiques its own samples, which "Critique Ability of Large
Language Models" (Luo et al. 2023) finds weak for small models, so unparsable outputs are data
(null + `parse_error` + raw text) and fail the stage only past `judge.max_parse_fail`.
"""

from __future__ import annotations

import math
import re
from typing import Literal

import polars as pl

from prefmill.config import JudgeConfig
from prefmill.engines.base import Engine, GenRequest
from prefmill.errors import InputError
from prefmill.schemas.tables import PAIRWISE_VERDICTS, POINTWISE_VERDICTS
from prefmill.schemas.validate import polars_schema
from prefmill.tasks.judging import (
    EMPTY_OUTPUT,
    check_parse_failures,
    closing,
    generate_all,
    judge_outputs,
    judge_request,
    question_of,
)


# parse_error values besides EMPTY_OUTPUT and ENGINE_ERROR (tasks.judging).
NO_SCORE = "no_score"
SCORE_OUT_OF_RANGE = "score_out_of_range"  # outside 1-10, e.g. 0, 11, -3
WRONG_SCALE = "wrong_scale"  # "Score: 4/5": another scale; not rescaled, since the rubric asked for 1-10
NO_VERDICT = "no_verdict"
AMBIGUOUS = "ambiguous"

_NUM = r"(-?[0-9]+(?:\.[0-9]+)?)"
_SCALE = r"(?:(?:/|(?i:out[ \t]+of))[ \t]*([0-9]+))?"
# "Score: 7", "score = 7/10", "**Score:** 8", "Overall rating (1-10): [[9]]"; a separator is required
# so that "grade 5 students" in a restated problem is not a score. No two starred gaps touch (no
# quadratic backtracking on a run of spaces, which small judges do emit).
_LABELLED = re.compile(
    r"(?i:\b(?:(?:final|overall|total)[ \t]+)?(?:score|rating|grade))\b[ \t*_]*(?:\([^)\n]*\)[ \t*_]*)?"
    r"(?:[:=]|(?i:is|of)\b)[ \t*_\[]*" + _NUM + r"[ \t\]]*" + _SCALE
)
_BRACKETED = re.compile(r"\[\[[ \t]*" + _NUM + r"[ \t]*\]\][ \t]*" + _SCALE)  # MT-Bench's "[[8]]"
_ALONE = re.compile(  # "7/10" or "7 out of 10" alone on the last non-empty line
    r"^[ \t*_#>]*\[*" + _NUM + r"[ \t\]]*(?:/|(?i:out[ \t]+of))[ \t]*([0-9]+)[ \t*_.\r]*(?:\n\s*)?\Z", re.MULTILINE
)


def build_pointwise_prompt(question: str, solution: str, *, rubric: str, rationale: bool = False) -> str:
    return (f"{rubric}\n\n[Problem]\n{question}\n\n[Solution]\n{solution}\n\n"
            + closing("`Score: <1-10>` (an integer from 1 to 10)", rationale=rationale))


def parse_pointwise(text: str) -> tuple[int | None, str | None, str | None]:
    """(score, rationale, parse_error); never raises.

    The last labelled score wins ("Score", "Rating", "Grade"), else the last `[[n]]`, else `n/10`
    alone on the last line; a bare number is never taken (it may be the problem's answer). Decimals
    in [1, 10] round half up (7.5 -> 8, 6.5 -> 7). The rationale is the text before the score line.
    """
    if not text or not text.strip():
        return None, None, EMPTY_OUTPUT
    match = _last(_LABELLED, text) or _last(_BRACKETED, text) or _ALONE.search(text)
    if match is None:
        return None, None, NO_SCORE
    value, scale = float(match.group(1)), match.group(2)
    if scale is not None and int(scale) != 10:
        return None, None, WRONG_SCALE
    if not 1 <= value <= 10:
        return None, None, SCORE_OUT_OF_RANGE
    line_start = text.rfind("\n", 0, match.start()) + 1
    rationale = text[:line_start].strip() or text[line_start : match.start()].strip(" \t*_#>[")
    return math.floor(value + 0.5), rationale or None, None


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    matches = list(pattern.finditer(text))
    return matches[-1] if matches else None


# A verdict value: "tie"/"draw"/"C" (MT-Bench's tie) or a side, maybe as "Response B" or "[[A]]". A lower-case
# a/b counts only when no word follows ("verdict: a" yes, "answer: a bit unclear" no).
_VALUE = (
    r"[ \t*_:\[(]*(?:(?P<tie>(?i:(?:a[ \t]+)?(?:tie|draw))\b|C(?![A-Za-z0-9]))"
    r"|(?:(?i:response|answer|assistant|output|solution|option)[ \t]+)?"
    r"(?P<side>[AB](?![A-Za-z0-9])|[ab](?![A-Za-z0-9])(?![ \t]*[A-Za-z]))|(?P<both>(?i:both|neither)\b))"
)
_VERDICT = re.compile(
    r"(?i:\b(?:final[ \t]+)?(?:verdict|answer|decision|choice|winner|preference))\b[ \t*_]*(?:[:=]|(?i:is)\b)" + _VALUE
)
_OTHER_SIDE = re.compile(  # "Verdict: A or B", "Verdict: A and B are both fine"
    r"[ \t*_\])]*(?i:and|or|/|&|vs\.?|versus)[ \t]*(?:(?i:response|answer|assistant)[ \t]+)?[ABab](?![A-Za-z0-9])"
)
_DOUBLE_BRACKET = re.compile(r"\[\[(?:(?P<side>[AB])|(?P<tie>C))\]\]")
_PHRASES = (
    re.compile(r"(?i:\b(?:better|best|preferred|superior|stronger)(?:[ \t]+(?:response|answer|one|solution))?"
               r"[ \t]+(?:is|would[ \t]+be))\b" + _VALUE),
    re.compile(r"(?i:\b(?:response|answer|assistant|solution))[ \t]+(?P<side>[AB])\b[ \t]+"
               r"(?i:is|was)[ \t]+(?i:better|superior|preferred|stronger)"),
    re.compile(r"(?i:\bI[ \t]+(?:prefer|choose|pick))\b" + _VALUE),
)
_LETTER = re.compile(r"(?<![A-Za-z0-9])([AB])(?![A-Za-z0-9])")


def _verdict_of(match: re.Match[str]) -> Literal["A", "B", "tie"] | None:
    found = match.groupdict()
    return "tie" if found.get("tie") else found["side"].upper() if found.get("side") else None  # type: ignore[return-value]


def parse_pairwise(text: str) -> tuple[Literal["A", "B", "tie"] | None, str | None]:
    """(verdict, parse_error); never raises.

    Order: the last labelled line ("Verdict:", "Final answer:", "Decision:"), then the last `[[A]]`
    / `[[B]]` / `[[C]]`, then phrases ("The better response is A", "Response B is better") that must
    agree. A labelled value naming both sides ("A or B", "both") is `ambiguous`, as is a text whose
    last line names A and B without a verdict.
    """
    if not text or not text.strip():
        return None, EMPTY_OUTPUT
    if labelled := _last(_VERDICT, text):
        if labelled.group("both") or _OTHER_SIDE.match(text, labelled.end()):
            return None, AMBIGUOUS
        return _verdict_of(labelled), None
    if bracketed := _last(_DOUBLE_BRACKET, text):
        return _verdict_of(bracketed), None
    said = {_verdict_of(m) for pattern in _PHRASES for m in pattern.finditer(text)} - {None}
    if len(said) == 1:
        return said.pop(), None
    last_line = next((line for line in reversed(text.splitlines()) if line.strip()), "")
    if len(said) > 1 or {"A", "B"} <= set(_LETTER.findall(last_line)):
        return None, AMBIGUOUS
    return None, NO_VERDICT


def build_pairwise_prompt(question: str, first: str, second: str, *, rubric: str, rationale: bool = False) -> str:
    return (
        f"{rubric}\n\nTwo responses to the same problem follow. Using the criteria above, decide which "
        "response is better; do not let their order or length decide, and do not give a score.\n\n"
        f"[Problem]\n{question}\n\n[Response A]\n{first}\n[End of Response A]\n\n"
        f"[Response B]\n{second}\n[End of Response B]\n\n"
        + closing("`Verdict: A`, `Verdict: B` or `Verdict: tie`", rationale=rationale)
    )


def _require(frame: pl.DataFrame, columns: tuple[str, ...], id_column: str, where: str) -> None:
    if missing := [c for c in columns if c not in frame.columns]:
        raise InputError(f"{where}: missing column(s) {missing}; got {frame.columns}")
    if frame[id_column].n_unique() != frame.height:
        raise InputError(f"{where}: `{id_column}` values repeat; request ids must be unique")


# The answer lines; with `cfg.constrained`, guided decoding makes the output that line (after a
# one-line rationale when `cfg.rationale`: tasks.judging.answer_format).
POINTWISE_LINE = r"Score: (10|[1-9])"
PAIRWISE_LINE = r"Verdict: (A|B|tie)"


def build_pointwise_requests(samples: pl.DataFrame, *, cfg: JudgeConfig) -> list[GenRequest]:
    """One request per sample, `request_id = sample_id`."""
    _require(samples, ("sample_id", "prompt", "completion"), "sample_id", "judge_pointwise")
    return [
        judge_request(sid, build_pointwise_prompt(question, completion, rubric=cfg.rubric, rationale=cfg.rationale), cfg,
                      line=POINTWISE_LINE, purpose="judge_pointwise", inputs={"question": question, "solution": completion})
        for sid, prompt, completion in samples.select("sample_id", "prompt", "completion").iter_rows()
        for question in [question_of(prompt, sid, stage="judge")]
    ]


def build_pairwise_requests(pairs: pl.DataFrame, *, cfg: JudgeConfig) -> list[GenRequest]:
    """Two requests per pair: `<pair_id>|ab` shows chosen as A, `<pair_id>|ba` shows it as B."""
    _require(pairs, ("pair_id", "prompt", "chosen_text", "rejected_text"), "pair_id", "judge_pairwise")
    requests = []
    for pid, prompt, chosen, rejected in pairs.select("pair_id", "prompt", "chosen_text", "rejected_text").iter_rows():
        question = question_of(prompt, pid, stage="judge")
        for order, first, second in (("ab", chosen, rejected), ("ba", rejected, chosen)):
            prompt_text = build_pairwise_prompt(question, first, second, rubric=cfg.rubric, rationale=cfg.rationale)
            requests.append(judge_request(f"{pid}|{order}", prompt_text, cfg, line=PAIRWISE_LINE, purpose="judge_pairwise",
                                          inputs={"question": question, "first": first, "second": second}))
    return requests


POINTWISE_COLUMNS = polars_schema(POINTWISE_VERDICTS)


def judge_pointwise(samples: pl.DataFrame, *, engine: Engine, cfg: JudgeConfig) -> pl.DataFrame:
    """One row per sample, in input order: scores per judge sample, their mean, raw outputs.

    An engine failure counts as a parse failure (`engine_error: ...`, raw null). Raises `EngineError`
    when the share of unusable outputs exceeds `cfg.max_parse_fail`.
    """
    requests = build_pointwise_requests(samples, cfg=cfg)
    results = generate_all(engine, requests, stage="judge")
    rows, every = [], []
    for request in requests:
        outputs = judge_outputs(request, results[request.request_id], parse_pointwise)
        every += outputs
        scores = [p[0] if p else None for _, p, _ in outputs]
        usable = [s for s in scores if s is not None]
        errors = [e for _, _, e in outputs if e is not None]
        rows.append({
            "sample_id": request.request_id, "judge_scores": scores,
            "judge_score": sum(usable) / len(usable) if usable else None,
            "judge_rationale": next((p[1] for _, p, _ in outputs if p and p[1] is not None), None),
            "judge_parse_failures": len(errors), "judge_parse_error": errors[0] if errors else None,
            "judge_raw": [raw for raw, _, _ in outputs], "judge_engine": engine.fingerprint,
        })
    check_parse_failures("pointwise", every, cfg)
    return pl.DataFrame(rows, schema=POINTWISE_COLUMNS)


_SIDE = {"ab": {"A": "chosen", "B": "rejected", "tie": "tie"}, "ba": {"A": "rejected", "B": "chosen", "tie": "tie"}}
_PREFERS_CHOSEN = {"chosen": 1.0, "tie": 0.5, "rejected": 0.0}


def summarize_sides(ab: list[str | None], ba: list[str | None]) -> tuple[float | None, bool | None, str | None]:
    """(prefers_chosen_share, swap_consistent, judge_prefers) from per-sample sides of both orders.

    Judge sample i of each order is compared; the pair is swap-consistent when a strict majority of
    samples with both verdicts name the same side, and the judge prefers a side when a strict
    majority of those consistent samples name it.
    """
    parsed = [s for s in ab + ba if s is not None]
    share = sum(_PREFERS_CHOSEN[s] for s in parsed) / len(parsed) if parsed else None
    both = [(x, y) for x, y in zip(ab, ba) if x is not None and y is not None]
    agreed = [x for x, y in both if x == y]
    consistent = 2 * len(agreed) > len(both) if both else None
    prefers = next((s for s in ("chosen", "rejected", "tie") if 2 * agreed.count(s) > len(agreed)), None)
    return share, consistent, prefers


PAIRWISE_COLUMNS = polars_schema(PAIRWISE_VERDICTS)


def judge_pairwise(pairs: pl.DataFrame, *, engine: Engine, cfg: JudgeConfig) -> pl.DataFrame:
    """One row per pair, in input order; verdicts stored as sides (`chosen`/`rejected`/`tie`/null).

    Raises `EngineError` when the share of unusable outputs (both orders) exceeds `cfg.max_parse_fail`.
    """
    requests = build_pairwise_requests(pairs, cfg=cfg)
    results = generate_all(engine, requests, stage="judge")
    rows, every = [], []
    for ab_request, ba_request in zip(requests[::2], requests[1::2]):
        ab = judge_outputs(ab_request, results[ab_request.request_id], parse_pairwise)
        ba = judge_outputs(ba_request, results[ba_request.request_id], parse_pairwise)
        every += ab + ba
        sides = {order: [_SIDE[order][p[0]] if p and p[0] else None for _, p, _ in outputs]
                 for order, outputs in (("ab", ab), ("ba", ba))}
        share, consistent, prefers = summarize_sides(sides["ab"], sides["ba"])
        errors = [e for _, _, e in ab + ba if e is not None]
        rows.append({
            "pair_id": ab_request.request_id.removesuffix("|ab"), "verdicts_ab": sides["ab"], "verdicts_ba": sides["ba"],
            "prefers_chosen_share": share, "swap_consistent": consistent, "judge_prefers": prefers,
            "judge_parse_failures": len(errors), "judge_parse_error": errors[0] if errors else None,
            "judge_raw_ab": [raw for raw, _, _ in ab], "judge_raw_ba": [raw for raw, _, _ in ba],
            "judge_engine": engine.fingerprint,
        })
    check_parse_failures("pairwise", every, cfg)
    return pl.DataFrame(rows, schema=PAIRWISE_COLUMNS)


def score_samples(samples: pl.DataFrame, *, engine: Engine, cfg: JudgeConfig) -> pl.DataFrame:
    """Every sample with its pointwise judge columns; samples the engine failed or left empty are not
    judged (null columns)."""
    usable = samples.filter(pl.col("error").is_null() & (pl.col("completion").str.strip_chars() != ""))
    judged = judge_pointwise(usable, engine=engine, cfg=cfg)
    return samples.join(judged.drop("judge_engine"), on="sample_id", how="left", maintain_order="left")


def rescore_samples(samples: pl.DataFrame, *, engine: Engine, cfg: JudgeConfig) -> pl.DataFrame:
    """Published samples (another version's, another model's) scored again by this run's judge, so
    their scores compare with this run's (Future-Guided Chosen)."""
    stale = [f.name for f in POINTWISE_VERDICTS if f.name != "sample_id"] + ["score"]  # the earlier judge's
    return score_samples(samples.drop(stale, strict=False), engine=engine, cfg=cfg)


def judge_kept_pairs(pairs: pl.DataFrame, *, engine: Engine, cfg: JudgeConfig) -> pl.DataFrame:
    """`judge_pairwise` on the pair candidates still kept."""
    return judge_pairwise(pairs.filter(pl.col("keep")), engine=engine, cfg=cfg)
