"""The RISE editors: the model edits a planned step (then, in `step_then_continue`, finishes the
solution from it), or the rule-based injector changes a calculation; every edit becomes a row with the
checks' verdict (tasks.rise.edit_checks)."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from prefmill.answers import extract_answer
from prefmill.config import RiseConfig, VerifyConfig
from prefmill.engines.base import Completion, Engine, GenRequest, GenResult, Sampling
from prefmill.rise_config import RULE_ERROR_TYPES
from prefmill.seeds import derived_seed
from prefmill.tasks.preference.pairs import reference_as_solution
from prefmill.tasks.rise.edit_checks import (
    ARITHMETIC_STILL_CHECKS,
    NO_CHECKABLE_ARITHMETIC,
    changed_share,
    check_edit,
    edit_span,
    token_diff,
)
from prefmill.tasks.rise.rule_injector import RuleEdit, inject_error
from prefmill.tasks.rise.plan import EditPlan, edit_prompt, edit_regex, editable_steps, parse_edit, seeded_rng

# drop_reason values besides the checks' (tasks.rise.edit_checks).
ENGINE_ERROR = "engine_error"
NO_RULE_EDIT = "no_rule_edit"  # no calculation could be changed so that the final answer moves


def _step_check(plan: EditPlan, edited_step: str, *, cfg: RiseConfig, verify_cfg: VerifyConfig) -> str | None:
    """The checks an edited step fails before any continuation; None when it is worth continuing."""
    reason = check_edit(chosen=plan.text, rejected=plan.spliced(edited_step), original_step=plan.step, edited_step=edited_step,
                        reference_answer=None, mode="edit_only", cfg=cfg, verify_cfg=verify_cfg)[0]
    return reason if reason not in (NO_CHECKABLE_ARITHMETIC, ARITHMETIC_STILL_CHECKS) else None


def _edit_row(plan: EditPlan, *, editor: str, engine: str, mode: str, rejected: str | None,
              edited_step: str | None, failed: str | None, cfg: RiseConfig, verify_cfg: VerifyConfig,
              truncated: bool = False) -> dict[str, Any]:
    """The edit's row; `failed` is the drop reason of an edit that produced no text."""
    text, (start, end) = plan.text, plan.steps[plan.step_index]
    original = text[start:end]
    row = {k: getattr(plan, k) for k in ("edit_id", "solution_id", "prompt_id", "prompt", "source", "sample_id",
                                 "engine", "answer", "reference_answer", "error_type", "step_index")}
    row |= {"chosen_text": text, "editor": editor, "edit_engine": engine, "mode": mode,
            "original_step": original, "edited_step": edited_step, "rejected_text": rejected,
            "rejected_answer": None, "edit_span": None, "edit_diff": None, "changed_share": None}
    if failed is not None:
        return row | {"keep": False, "drop_reason": failed}
    reason, answer = check_edit(chosen=text, rejected=rejected, original_step=original, edited_step=edited_step,
                                reference_answer=plan.reference_answer, mode=mode, cfg=cfg, verify_cfg=verify_cfg,
                                truncated=truncated)
    return row | {"rejected_answer": answer, "edit_span": edit_span(original, edited_step, start),
                  "edit_diff": token_diff(text, rejected), "changed_share": changed_share(original, edited_step),
                  "keep": reason is None, "drop_reason": reason}


# --- The editors ---


def _edit_requests(plans: list[EditPlan], *, cfg: RiseConfig) -> list[GenRequest]:
    return [
        GenRequest(
            request_id=p.edit_id,
            messages=({"role": "user", "content": edit_prompt(p.question, p.text, p.steps, p.step_index, p.instruction)},),
            sampling=Sampling(n=1, temperature=cfg.temperature, max_tokens=cfg.max_tokens,
                              seed=derived_seed(cfg.seed, p.edit_id), regex=edit_regex(p.step, p.error_type, cfg=cfg)),
            purpose="rise_edit",
            inputs={"question": p.question, "step_number": p.step_index + 1, "step": p.step, "error_type": p.error_type},
        )
        for p in plans
    ]


def _continue_requests(
    plans: list[EditPlan], edits: dict[str, str], *, cfg: RiseConfig, verify_cfg: VerifyConfig
) -> list[GenRequest]:
    return [
        GenRequest(
            request_id=f"{p.edit_id}/continue",
            messages=(*p.prompt, {"role": "assistant", "content": p.partial(edits[p.edit_id])}),
            continue_final=True,
            sampling=Sampling(n=1, temperature=cfg.temperature, max_tokens=cfg.continue_max_tokens,
                              seed=derived_seed(cfg.seed, f"{p.edit_id}/continue")),
            purpose="rise_continue", inputs={"question": p.question},
        )
        for p in plans
        if p.edit_id in edits and _step_check(p, edits[p.edit_id], cfg=cfg, verify_cfg=verify_cfg) is None
    ]


def _first(result: GenResult) -> tuple[Completion | None, str | None]:
    """(the sample, error) of a one-sample result."""
    if result.error is not None or not result.completions:
        return None, result.error or "no completion"
    return result.completions[0], None


def llm_edits(plans: list[EditPlan], *, engine: Engine, cfg: RiseConfig, verify_cfg: VerifyConfig) -> list[dict[str, Any]]:
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
        edit, continued = edited.get(p.edit_id), continuations.get(p.edit_id)
        if edit is None or p.edit_id in errors:
            rejected = None
        elif continued is not None:
            rejected = (p.partial(edit) + continued.text.lstrip("\n")).rstrip()
        else:  # edit_only, or an edit dropped before it was worth continuing
            rejected = p.spliced(edit)
        failed = f"{ENGINE_ERROR}: {errors[p.edit_id]}" if p.edit_id in errors else None
        rows.append(_edit_row(p, editor="llm", engine=engine.fingerprint, mode=cfg.mode, rejected=rejected,
                              edited_step=edit, failed=failed, cfg=cfg, verify_cfg=verify_cfg,
                              truncated=continued is not None and continued.finish_reason == "length"))
    return rows


def _rule_edit(plan: EditPlan, error_type: str, rng: random.Random) -> RuleEdit | None:
    """A rule-based edit of the solution; a GSM8K reference is edited with its `<<a op b=c>>` annotations,
    which show every calculation, and shown without them, as its chosen side is."""
    annotated = plan.annotated
    steps = editable_steps(annotated) if annotated else plan.steps
    if not annotated or len(steps) != len(plan.steps):
        return inject_error(plan.text, plan.steps, error_type=error_type, rng=rng, final_answer=extract_answer)
    made = inject_error(annotated, steps, error_type=error_type, rng=rng, final_answer=extract_answer)
    if made is None:
        return None
    return RuleEdit(reference_as_solution(made.text), made.step_index, made.error_type, reference_as_solution(made.step))


def rule_edits(plans: list[EditPlan], *, cfg: RiseConfig, verify_cfg: VerifyConfig) -> list[dict[str, Any]]:
    """One rule-based edit per plan: its error type first if the rules have it, then the other rule types
    (with `editor: rules`, only those `error_types` names), never one a solution already has; the step is
    wherever a calculation could be changed so that the final answer moves."""
    chosen = cfg.chosen_types()
    allowed = [t for t in RULE_ERROR_TYPES if cfg.editor == "llm" or t in chosen]
    made_types: dict[str, set[str]] = {}
    rows = []
    for p in plans:
        done = made_types.setdefault(p.solution_id, set())
        rng = seeded_rng(cfg.seed, "rules", p.edit_id)
        others = [t for t in allowed if t != p.error_type and t not in done]
        rng.shuffle(others)
        kinds = [p.error_type] * (p.error_type in allowed and p.error_type not in done) + others
        made = next((e for kind in kinds if (e := _rule_edit(p, kind, rng)) is not None), None)
        if made is None:
            rows.append(_edit_row(replace(p, edit_id=f"{p.edit_id}:no-rule"), editor="rules", engine="rules", mode="rules",
                                  rejected=None, edited_step=None, failed=NO_RULE_EDIT, cfg=cfg, verify_cfg=verify_cfg))
            continue
        done.add(made.error_type)
        plan = replace(p, error_type=made.error_type, step_index=made.step_index,
                       edit_id=f"{p.solution_id}:{made.error_type}:rules")
        rows.append(_edit_row(plan, editor="rules", engine="rules", mode="rules", rejected=made.text,
                              edited_step=made.step, failed=None, cfg=cfg, verify_cfg=verify_cfg))
    return rows
