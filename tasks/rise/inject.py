"""RISE: hard negatives that differ from a correct solution in a few tokens ("Subtle Errors Matter",
Xu et al. 2024). The model edits one step of a verified-correct solution to hold an error of a named
type (change a number, swap two terms, ...), then, in `step_then_continue`, finishes the solution from
the edited step so the error reaches the final answer. RISE's public code has no evaluator for "is the
edit really wrong?"; here the verifier decides, and an edit is kept only when

- its final answer, stated explicitly (`#### x`, `\\boxed{x}`, "the answer is x": a continuation
  that merely stops at a number states none), no longer matches the reference (`edit_only`: the
  edited step's arithmetic no longer checks out),
- it does not admit the error ("wait", "mistake", ... from `rise.admission_phrases`),
- it changes at most `rise.max_changed_share` of the edited step's tokens.

Every edit stays a row with `keep` and the first `drop_reason` that applies (tasks.edit_checks). A kept edit records its
error type, the edited step, the edit's character span in the rejected text and a token-level diff, so
a trainer can weight the loss on the tokens that differ. A rule-based injector (tasks.arithmetic)
edits where no model does (`editor: rules`) or where every model edit was dropped (`rules_fallback`).
"""

from __future__ import annotations

import polars as pl

from prefmill.config import RiseConfig, VerifyConfig
from prefmill.engines.base import Engine
from prefmill.schemas.tables import RISE_EDITS
from prefmill.schemas.validate import polars_schema
from prefmill.tasks.rise.editors import llm_edits, rule_edits
from prefmill.tasks.rise.plan import plan_edits, solutions

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
                first.setdefault(p.solution_id, p)
            rows += rule_edits([p for sid, p in first.items() if sid not in kept], cfg=cfg, verify_cfg=verify_cfg)
    schema = EDITS_SCHEMA | {"prompt": samples.schema["prompt"]}
    return pl.DataFrame(rows, schema=schema).select(list(schema))
