"""RISE: hard negatives that differ from a correct solution in a few tokens ("Subtle Errors Matter",
Xu et al. 2024). The model edits one step of a verified-correct solution to hold an error of a named
type (change a number, swap two terms, ...), then, in `step_then_continue`, finishes the solution from
the edited step so the error reaches the final answer. RISE's public code has no evaluator for "is the
edit really wrong?"; here the verifier decides, and an edit is kept only when

- its final answer no longer matches the reference (`edit_only`: the edited step's arithmetic no
  longer checks out),
- it does not admit the error ("wait", "mistake", ... from `rise.admission_phrases`),
- it changes at most `rise.max_changed_share` of the edited step's tokens.

Every edit stays a row with `keep` and the first `drop_reason` that applies (tasks.edit_checks). A kept edit records its
error type, the edited step, the edit's character span in the rejected text and a token-level diff, so
a trainer can weight the loss on the tokens that differ. A rule-based injector (tasks.arithmetic)
edits where no model does (`editor: rules`) or where every model edit was dropped (`rules_fallback`).
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any

import polars as pl
from prefmill.schemas.tables import PAIRS, RISE_EDITS
from prefmill.schemas.validate import polars_schema
from prefmill.tasks.preference.pairs import (
    finish_pairs,
    pair_row,
    rank_curriculum,
    reference_as_solution,
)
from prefmill.tasks.process.steps import SPAN, split_steps
from prefmill.tasks.rise.arithmetic import NUMBER
from prefmill.tasks.rise.rule_injector import RuleEdit, inject_error
from prefmill.tasks.rise.edit_checks import (
    ARITHMETIC_STILL_CHECKS,
    NO_CHECKABLE_ARITHMETIC,
    changed_share,
    check_edit,
    edit_span,
    token_diff,
)
from prefmill.tasks.solution_text import STEP_LABEL
from prefmill.rise_config import RULE_ERROR_TYPES

from prefmill.answers import extract_answer, find_answer
from prefmill.config import RiseConfig, VerifyConfig
from prefmill.engines.base import Completion, Engine, GenRequest, GenResult, Sampling
from prefmill.seeds import derived_seed

# drop_reason values besides the checks' (tasks.edit_checks).
ENGINE_ERROR = "engine_error"
NO_RULE_EDIT = "no_rule_edit"  # no calculation could be changed so that the final answer moves
OVER_RATIO = "over_ratio"  # set when mixing with sampled pairs

DIFF = polars_schema(PAIRS)["edit_diff"]


def _seeded(*parts: object) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big"))


# --- Which solutions, which steps ---


def solutions(samples: pl.DataFrame, prompts: pl.DataFrame, *, cfg: RiseConfig) -> pl.DataFrame:
    """The correct solutions to edit: per prompt the `solutions_per_prompt` most confident correct
    samples, topped up with the reference solution when `use_reference` is on."""
    rows = []
    by_prompt = {pid: g for (pid,), g in samples.group_by("prompt_id", maintain_order=True)}
    for prompt in prompts.iter_rows(named=True):
        group = by_prompt.get(prompt["prompt_id"])
        if group is None:
            continue
        correct = group.filter(pl.col("correct") & pl.col("error").is_null()).sort(
            ["mean_logprob", "sample_index"], descending=[True, False], nulls_last=True
        )
        for s in correct.head(cfg.solutions_per_prompt).iter_rows(named=True):
            rows.append({"solution_id": s["sample_id"], "prompt_id": s["prompt_id"], "prompt": s["prompt"],
                         "question": prompt["question"], "text": s["completion"], "source": "sample",
                         "sample_id": s["sample_id"], "engine": s["engine"], "answer": s["extracted"],
                         "reference_answer": s["reference_answer"], "annotated": None})
        if cfg.use_reference and correct.height < cfg.solutions_per_prompt and prompt["reference"]:
            reference = reference_as_solution(prompt["reference"])
            rows.append({"solution_id": f"{prompt['prompt_id']}-reference", "prompt_id": prompt["prompt_id"],
                         "prompt": group["prompt"][0], "question": prompt["question"], "text": reference,
                         "source": "reference", "sample_id": None, "engine": "reference",
                         "answer": prompt["reference_answer"], "reference_answer": prompt["reference_answer"],
                         "annotated": prompt["reference"]})
    schema = {"solution_id": pl.String, "prompt_id": pl.String, "prompt": samples.schema["prompt"],
              "question": pl.String, "text": pl.String, "source": pl.String, "sample_id": pl.String,
              "engine": pl.String, "answer": pl.String, "reference_answer": pl.String, "annotated": pl.String}
    return pl.DataFrame(rows, schema=schema)




def editable_steps(text: str) -> list[tuple[int, int]]:
    """Step spans (one a line) without a "Step k:" label and without a GSM8K `#### answer` line: the
    label is no part of the reasoning, the answer follows from the steps."""
    spans = []
    for start, end in split_steps(text, rule="newline"):
        tail = re.search(r"(?m)^[^\S\n]*####", text[start:end])
        if tail is not None:
            end = start + len(text[start : start + tail.start()].rstrip())
        if label := STEP_LABEL.match(text, start, end):
            start = label.end()
        if end > start:
            spans.append((start, end))
    return spans


def plan_edits(solutions: pl.DataFrame, *, cfg: RiseConfig) -> list[dict[str, Any]]:
    """Per solution, `edits_per_solution` (error type, step) draws, seeded by the solution id."""
    types = cfg.chosen_types()
    if cfg.editor == "rules":
        types = {name: text for name, text in types.items() if name in RULE_ERROR_TYPES}
    plans = []
    for solution in solutions.iter_rows(named=True):
        steps = editable_steps(solution["text"])
        numeric = [i for i, (s, e) in enumerate(steps) if re.search(r"\d", solution["text"][s:e])]
        if not steps:
            continue
        rng = _seeded(cfg.seed, solution["solution_id"])
        for name in rng.sample(sorted(types), min(cfg.edits_per_solution, len(types))):
            k = rng.choice(numeric or list(range(len(steps))))
            plans.append(solution | {"edit_id": f"{solution['solution_id']}:{name}", "error_type": name,
                                     "instruction": types[name], "steps": steps, "step_index": k})
    return plans


def edit_prompt(question: str, text: str, steps: list[tuple[int, int]], k: int, instruction: str) -> str:
    shown = "\n".join(f"Step {i + 1}: {text[s:e]}" for i, (s, e) in enumerate(steps))
    answer = find_answer(text)[0]
    final = f"\nFinal answer: {answer}" if answer is not None else ""
    return (
        "We are collecting subtle mistakes in math solutions.\n\n"
        f"[Problem]\n{question}\n\n[Correct solution]\n{shown}{final}\n\n"
        f"Rewrite step {k + 1} so that it contains one subtle error. {instruction}\n"
        "Change as few words as possible and keep the rest of the step as it is. "
        "Do not mention or hint that anything was changed.\n"
        f"Write only the new step {k + 1}, on one line."
    )


_SLOT = re.compile(rf"{NUMBER}|(?<=[\d\s])[-+*/x×÷](?=\s*\$?\d)")


def edit_regex(step: str, error_type: str, *, cfg: RiseConfig) -> str | None:
    """The guided-decoding pattern of an edit: one line, or (`template`) the step with its numbers and
    operators as the only free slots."""
    if cfg.constrained == "off":
        return None
    if cfg.constrained == "line" or error_type not in cfg.template_types or not _SLOT.search(step):
        return r"[^\n]+"
    parts, last = [], 0
    for m in _SLOT.finditer(step):
        parts.append(_literal(step[last : m.start()]))
        parts.append(r"\d{1,7}(?:,\d{3}){0,2}(?:\.\d{1,2})?" if m.group()[0].isdigit() else r"[-+*/x]")
        last = m.end()
    parts.append(_literal(step[last:]))
    return "".join(parts)


def _literal(text: str) -> str:
    """`text` as a regex matching itself, escaping only metacharacters (guided-decoding engines read a
    smaller regex dialect than Python's, without escaped spaces)."""
    return re.sub(r"([\\.^$*+?{}\[\]|()])", r"\\\1", text)


def parse_edit(output: str) -> str:
    """The edited step: the first non-empty line, without a `Step k:` label or wrapping quotes."""
    line = next((ln.strip() for ln in output.splitlines() if ln.strip()), "")
    line = line[label.end() :] if (label := STEP_LABEL.match(line)) else line
    return line.strip().strip("`\"'").strip()


def _spliced(plan: dict[str, Any], edited_step: str) -> str:
    """The solution with its planned step replaced by `edited_step`, the rest as it was."""
    start, end = plan["steps"][plan["step_index"]]
    return plan["text"][:start] + edited_step + plan["text"][end:]


def _step_check(plan: dict[str, Any], edited_step: str, *, cfg: RiseConfig, verify_cfg: VerifyConfig) -> str | None:
    """The checks an edited step fails before any continuation; None when it is worth continuing."""
    reason = check_edit(chosen=plan["text"], rejected=_spliced(plan, edited_step), original_step=_step(plan), edited_step=edited_step,
                        reference_answer=None, mode="edit_only", cfg=cfg, verify_cfg=verify_cfg)[0]
    return reason if reason not in (NO_CHECKABLE_ARITHMETIC, ARITHMETIC_STILL_CHECKS) else None


def _edit_row(plan: dict[str, Any], *, editor: str, engine: str, mode: str, rejected: str | None,
              edited_step: str | None, failed: str | None, cfg: RiseConfig, verify_cfg: VerifyConfig,
              truncated: bool = False) -> dict[str, Any]:
    """The edit's row; `failed` is the drop reason of an edit that produced no text."""
    text, (start, end) = plan["text"], plan["steps"][plan["step_index"]]
    original = text[start:end]
    row = {k: plan[k] for k in ("edit_id", "solution_id", "prompt_id", "prompt", "source", "sample_id",
                                 "engine", "answer", "reference_answer", "error_type", "step_index")}
    row |= {"chosen_text": text, "editor": editor, "edit_engine": engine, "mode": mode,
            "original_step": original, "edited_step": edited_step, "rejected_text": rejected,
            "rejected_answer": None, "edit_span": None, "edit_diff": None, "changed_share": None}
    if failed is not None:
        return row | {"keep": False, "drop_reason": failed}
    reason, answer = check_edit(chosen=text, rejected=rejected, original_step=original, edited_step=edited_step,
                                reference_answer=plan["reference_answer"], mode=mode, cfg=cfg, verify_cfg=verify_cfg,
                                truncated=truncated)
    return row | {"rejected_answer": answer, "edit_span": edit_span(original, edited_step, start),
                  "edit_diff": token_diff(text, rejected), "changed_share": changed_share(original, edited_step),
                  "keep": reason is None, "drop_reason": reason}


# --- The editors ---


def _edit_requests(plans: list[dict[str, Any]], *, cfg: RiseConfig) -> list[GenRequest]:
    return [
        GenRequest(
            request_id=p["edit_id"],
            messages=({"role": "user", "content": edit_prompt(p["question"], p["text"], p["steps"], p["step_index"], p["instruction"])},),
            sampling=Sampling(n=1, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                              seed=derived_seed(cfg.seed, p["edit_id"]), regex=edit_regex(_step(p), p["error_type"], cfg=cfg)),
            purpose="rise_edit",
            inputs={"question": p["question"], "step_number": p["step_index"] + 1, "step": _step(p), "error_type": p["error_type"]},
        )
        for p in plans
    ]


def _step(plan: dict[str, Any]) -> str:
    start, end = plan["steps"][plan["step_index"]]
    return plan["text"][start:end]


def _partial(plan: dict[str, Any], edited: str) -> str:
    start = plan["steps"][plan["step_index"]][0]
    return plan["text"][:start] + edited + "\n"


def _continue_requests(
    plans: list[dict[str, Any]], edits: dict[str, str], *, cfg: RiseConfig, verify_cfg: VerifyConfig
) -> list[GenRequest]:
    return [
        GenRequest(
            request_id=f"{p['edit_id']}/continue",
            messages=(*p["prompt"], {"role": "assistant", "content": _partial(p, edits[p["edit_id"]])}),
            continue_final=True,
            sampling=Sampling(n=1, temperature=cfg.temperature, max_tokens=cfg.continue_max_tokens,
                              seed=derived_seed(cfg.seed, f"{p['edit_id']}/continue")),
            purpose="rise_continue", inputs={"question": p["question"]},
        )
        for p in plans
        if p["edit_id"] in edits and _step_check(p, edits[p["edit_id"]], cfg=cfg, verify_cfg=verify_cfg) is None
    ]


def _first(result: GenResult) -> tuple[Completion | None, str | None]:
    """(the sample, error) of a one-sample result."""
    if result.error is not None or not result.completions:
        return None, result.error or "no completion"
    return result.completions[0], None


def llm_edits(plans: list[dict[str, Any]], *, engine: Engine, cfg: RiseConfig, verify_cfg: VerifyConfig) -> list[dict[str, Any]]:
    """Edit each planned step with the model (one batched call), then continue from the edits (a second)."""
    edited: dict[str, str] = {}
    errors: dict[str, str] = {}
    for result in engine.generate(_edit_requests(plans, cfg=cfg)):
        sample, error = _first(result)
        if error is not None:
            errors[result.request_id] = error
        else:
            edited[result.request_id] = parse_edit(sample.text)
    continuations: dict[str, Completion] = {}
    if cfg.mode == "step_then_continue" and (requests := _continue_requests(plans, edited, cfg=cfg, verify_cfg=verify_cfg)):
        for result in engine.generate(requests):
            sample, error = _first(result)
            edit_id = result.request_id.removesuffix("/continue")
            if error is not None:
                errors[edit_id] = error
            else:
                continuations[edit_id] = sample
    rows = []
    for p in plans:
        edit, continued = edited.get(p["edit_id"]), continuations.get(p["edit_id"])
        if edit is None or p["edit_id"] in errors:
            rejected = None
        elif continued is not None:
            rejected = (_partial(p, edit) + continued.text.lstrip("\n")).rstrip()
        else:  # edit_only, or an edit dropped before it was worth continuing
            rejected = _spliced(p, edit)
        failed = f"{ENGINE_ERROR}: {errors[p['edit_id']]}" if p["edit_id"] in errors else None
        rows.append(_edit_row(p, editor="llm", engine=engine.fingerprint, mode=cfg.mode, rejected=rejected,
                              edited_step=edit, failed=failed, cfg=cfg, verify_cfg=verify_cfg,
                              truncated=continued is not None and continued.finish_reason == "length"))
    return rows


def _rule_edit(plan: dict[str, Any], error_type: str, rng: random.Random) -> RuleEdit | None:
    """A rule-based edit of the solution; a GSM8K reference is edited with its `<<a op b=c>>` annotations,
    which show every calculation, and shown without them, as its chosen side is."""
    annotated = plan["annotated"]
    steps = editable_steps(annotated) if annotated else plan["steps"]
    if not annotated or len(steps) != len(plan["steps"]):
        return inject_error(plan["text"], plan["steps"], error_type=error_type, rng=rng, final_answer=extract_answer)
    made = inject_error(annotated, steps, error_type=error_type, rng=rng, final_answer=extract_answer)
    if made is None:
        return None
    return RuleEdit(reference_as_solution(made.text), made.step_index, made.error_type, reference_as_solution(made.step))


def rule_edits(plans: list[dict[str, Any]], *, cfg: RiseConfig, verify_cfg: VerifyConfig) -> list[dict[str, Any]]:
    """One rule-based edit per plan: its error type first if the rules have it, then the other rule types
    (with `editor: rules`, only those `error_types` names), never one a solution already has; the step is
    wherever a calculation could be changed so that the final answer moves."""
    chosen = cfg.chosen_types()
    allowed = [t for t in RULE_ERROR_TYPES if cfg.editor == "llm" or t in chosen]
    made_types: dict[str, set[str]] = {}
    rows = []
    for p in plans:
        done = made_types.setdefault(p["solution_id"], set())
        rng = _seeded(cfg.seed, "rules", p["edit_id"])
        others = [t for t in allowed if t != p["error_type"] and t not in done]
        rng.shuffle(others)
        kinds = [p["error_type"]] * (p["error_type"] in allowed and p["error_type"] not in done) + others
        made = next((e for kind in kinds if (e := _rule_edit(p, kind, rng)) is not None), None)
        if made is None:
            rows.append(_edit_row(p | {"edit_id": f"{p['edit_id']}:no-rule"}, editor="rules", engine="rules", mode="rules",
                                  rejected=None, edited_step=None, failed=NO_RULE_EDIT, cfg=cfg, verify_cfg=verify_cfg))
            continue
        done.add(made.error_type)
        plan = p | {"error_type": made.error_type, "step_index": made.step_index,
                    "edit_id": f"{p['solution_id']}:{made.error_type}:rules"}
        rows.append(_edit_row(plan, editor="rules", engine="rules", mode="rules", rejected=made.text,
                              edited_step=made.step, failed=None, cfg=cfg, verify_cfg=verify_cfg))
    return rows


EDITS_SCHEMA = polars_schema(RISE_EDITS)


def inject(
    samples: pl.DataFrame, prompts: pl.DataFrame, *, engine: Engine | None, cfg: RiseConfig, verify_cfg: VerifyConfig
) -> pl.DataFrame:
    """Every edit of every chosen solution, kept or dropped with its reason (see the module docstring)."""
    chosen = solutions(samples, prompts, cfg=cfg)
    plans = plan_edits(chosen, cfg=cfg)
    if cfg.editor == "rules":
        rows = rule_edits(plans, cfg=cfg, verify_cfg=verify_cfg)
    else:
        if engine is None:
            raise ValueError("rise: editor 'llm' needs an engine")
        rows = llm_edits(plans, engine=engine, cfg=cfg, verify_cfg=verify_cfg) if plans else []
        if cfg.rules_fallback:
            kept = {r["solution_id"] for r in rows if r["keep"]}
            first = {}
            for p in plans:
                first.setdefault(p["solution_id"], p)
            rows += rule_edits([p for sid, p in first.items() if sid not in kept], cfg=cfg, verify_cfg=verify_cfg)
    schema = EDITS_SCHEMA | {"prompt": samples.schema["prompt"]}
    return pl.DataFrame(rows, schema=schema).select(list(schema))


# --- Pairs ---

def rise_pairs(edits: pl.DataFrame, *, votes: pl.DataFrame | None = None) -> pl.DataFrame:
    """(original, kept edit) pairs with strategy `rise`: chosen scores 1, rejected 0."""
    rows = []
    for e in edits.filter(pl.col("keep")).iter_rows(named=True):
        chosen = {"text": e["chosen_text"], "sample_id": e["sample_id"], "answer": e["answer"], "logprob": None,
                  "score": 1.0, "engine": e["engine"], "version": None}
        rejected = {"text": e["rejected_text"], "sample_id": e["edit_id"], "answer": e["rejected_answer"],
                    "logprob": None, "score": 0.0, "engine": e["edit_engine"], "version": None}
        row = pair_row(e, chosen, rejected, source=e["source"])
        rows.append(row | {"prompt": e["prompt"], "error_type": e["error_type"], "edited_step": e["step_index"],
                           "edit_span": e["edit_span"], "edit_diff": e["edit_diff"], "changed_share": e["changed_share"]})
    if not rows:
        return pl.DataFrame(schema={"prompt_id": pl.String, "keep": pl.Boolean, "strategy": pl.String})
    frame = pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.col("edited_step").cast(pl.Int32), pl.col("edit_span").cast(SPAN), pl.col("edit_diff").cast(DIFF)
    )
    return finish_pairs(frame, votes=votes, strategy="rise")


RISE_COLUMNS = ("error_type", "edited_step", "edit_span", "edit_diff", "changed_share")


def with_rise_columns(pairs: pl.DataFrame) -> pl.DataFrame:
    """`pairs` with the RISE columns, null where a run made no RISE pairs."""
    schema = polars_schema(PAIRS)
    return pairs.with_columns(pl.lit(None, schema[c]).alias(c) for c in RISE_COLUMNS if c not in pairs.columns)


def mix_pairs(outcomes: pl.DataFrame, rise: pl.DataFrame, *, ratio: float | None) -> pl.DataFrame:
    """Sampled pair outcomes plus RISE pairs, at most `ratio` RISE pairs per kept sampled pair (the
    others `over_ratio`, picked by a hash of the pair id so the choice is stable). In the curriculum the
    RISE pairs, the hardest negatives whatever their margin, come after the sampled ones."""
    if not rise.height:
        return outcomes
    if ratio is not None:
        allowed = int(ratio * int(outcomes["keep"].sum()))
        ranked = sorted(rise["pair_id"], key=lambda pid: hashlib.sha256(pid.encode()).hexdigest())
        over = pl.col("pair_id").is_in(ranked[allowed:])
        rise = rise.with_columns(
            keep=pl.col("keep") & ~over,
            drop_reason=pl.when(over).then(pl.lit(OVER_RATIO)).otherwise(pl.col("drop_reason")),
        )
    return rank_curriculum(pl.concat([outcomes, rise], how="diagonal_relaxed"), last=pl.col("strategy") == "rise")


def mix(pairs: pl.DataFrame, edits: pl.DataFrame, votes: pl.DataFrame | None, *, cfg: RiseConfig) -> pl.DataFrame:
    """The sampled pair outcomes plus the pairs of the kept RISE edits, capped by `rise.ratio`."""
    return mix_pairs(pairs, rise_pairs(edits, votes=votes), ratio=cfg.ratio)
