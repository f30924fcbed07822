"""OmegaPRM step labels (Luo et al. 2024, "Improve Mathematical Reasoning in Language Models by Automated
Process Supervision"): per question a tree of states (step prefixes) with MC values, and a binary search
for the first step whose prefix has MC 0 after a prefix with MC > 0.

- Tree: a node is a step prefix (keyed by its text, `tasks.mc_label.step_prefix`) with N rollouts and the
  number that verify correct (`prefmill.answers.judge`); MC = correct / N. A rollout from prefix s that goes
  on through longer prefixes s' also counts for them (`share_rollouts`): its continuation after s' is a
  sample from s', as the paper's tree adds rollouts as nodes. The chains themselves are rollouts from
  the root (the bare question), so the root has MC > 0 when a chain of the question is correct.
- Candidates (state, rollout): every chain whose final answer is wrong (state = root); with `explore`,
  also the wrong rollouts met on the way (state = their prefix, searched with the budget the chains
  leave). Selection takes the max Q + U, Q(s, r) = alpha^(1 - MC(s)) * beta^(len(r) / L),
  U(s) = c_puct * sqrt(sum N) / (1 + N(s)), `width` candidates at a time.
- Check: a prefix is sampled until one rollout is correct (MC > 0) or k rollouts all fail (MC = 0); with
  `early_stop` in doubling batches (2, 2, 4), since the search only asks "MC > 0?".
- A chain whose final answer verifies is labelled all True with no rollout (the paper only searches
  wrong rollouts); when no chain is correct the root is checked first, and a root with MC 0 makes the
  question `unsolved` (the paper drops such questions).

Labels (TRL stepwise, bool for every step): as in Math-Shepherd / PRM800K stepwise sets the
`completions` are cut after the first error, so `labels` is [True] * e + [False], or all True without
an error. Every round, the checks of all pending questions go to the engine in one `generate` call.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from prefmill.checkpoints import Checkpoints
from prefmill.config import ProcessConfig, VerifyConfig
from prefmill.engines.base import Engine, GenRequest
from prefmill.errors import InputError
from prefmill.schemas.tables import STEP_LABELS
from prefmill.schemas.validate import polars_schema
from prefmill.tasks.process.omegaprm_tree import OmegaConfig, QuestionTree
from prefmill.answers import reference_final_answer


OUTPUT_SCHEMA = polars_schema(STEP_LABELS, columns=(
    "chain_id", "prompt_id", "prompt", "completions", "labels", "values", "first_error_step",
    "status",  # labelled | unsolved | budget | engine_error
    "source",  # chain (an input row) | rollout (found by `explore`)
    "method", "engine", "rollout_tokens", "rollouts",
))


def search_question(question_chains: pl.DataFrame, *, engine: Engine, cfg: OmegaConfig, reference: str,
                    verify_cfg: VerifyConfig) -> QuestionTree:
    """Search one question's chains (`chain_id`, `prompt_id`, `prompt`, `steps`) to the end; see the module."""
    tree = _tree(question_chains, reference, cfg, verify_cfg)
    while requests := tree.plan():
        tree.absorb({r.request_id: r for r in engine.generate(requests)})
    return tree


def _tree(chains: pl.DataFrame, reference: str, cfg: OmegaConfig, verify_cfg: VerifyConfig) -> QuestionTree:
    first = chains.row(0, named=True)
    return QuestionTree(first["prompt_id"], first["prompt"], list(zip(chains["chain_id"], chains["steps"].to_list())),
                        reference=reference_final_answer(reference), cfg=cfg, verify_cfg=verify_cfg)


def omega_label(chains: pl.DataFrame, references: pl.DataFrame, *, engine: Engine, cfg: OmegaConfig,
                verify_cfg: VerifyConfig, done: dict[str, dict] | None = None,
                on_question_done: Callable[[str, dict], None] | None = None) -> pl.DataFrame:
    """OmegaPRM labels for every chain, all questions searched together, one `generate` call a round.

    Questions in `done` (prompt_id -> a result from an earlier run) are not searched again; their
    stored rows are reused. `on_question_done(prompt_id, result)` is called as each question finishes,
    with a JSON-serialisable result to checkpoint. Output: see `OUTPUT_SCHEMA`; input chains in input
    order, then the rows of explored rollouts.
    """
    done = done or {}
    for table, needed in ((chains, ("chain_id", "prompt_id", "prompt", "steps")), (references, ("prompt_id", "reference"))):
        if missing := [c for c in needed if c not in table.columns]:
            raise InputError(f"omega_label: a table lacks column(s) {missing}; it has {table.columns}",
                             hint="chains need chain_id, prompt_id, prompt, steps; references prompt_id, reference")
    if chains["chain_id"].is_duplicated().any():
        raise InputError("omega_label: chain_id values repeat", hint="give every chain its own id")
    refs = dict(zip(references["prompt_id"], references["reference"]))
    if missing := [p for p in chains["prompt_id"].unique(maintain_order=True) if refs.get(p) is None and p not in done]:
        raise InputError(f"omega_label: no reference for prompt_id(s) {missing[:5]}",
                         hint="pass the prompts table (prompt_id, reference) the chains were generated from")
    results = dict(done)
    trees = [_tree(group, refs[pid], cfg, verify_cfg)
             for (pid,), group in chains.group_by("prompt_id", maintain_order=True) if pid not in done]
    while trees:
        batch: list[GenRequest] = []
        for tree in list(trees):
            batch += tree.plan()
            if tree.finished:
                results[tree.prompt_id] = tree.result(engine.fingerprint)
                if on_question_done is not None:
                    on_question_done(tree.prompt_id, results[tree.prompt_id])
                trees.remove(tree)
        if batch:
            answered = {r.request_id: r for r in engine.generate(batch)}
            for tree in trees:
                tree.absorb(answered)
    rows = {row["chain_id"]: row for result in results.values() for row in result["rows"]}
    if lost := [c for c in chains["chain_id"] if c not in rows]:
        raise InputError(f"omega_label: the stored results lack chain(s) {lost[:5]}",
                         hint="delete the checkpoint of their question so it is searched again")
    extra = [row for pid in chains["prompt_id"].unique(maintain_order=True) for row in results[pid]["rows"]
             if row["source"] == "rollout"]
    return pl.DataFrame([rows[c] for c in chains["chain_id"]] + extra, schema=OUTPUT_SCHEMA)


def balance(rows: pl.DataFrame, *, seed: int) -> pl.DataFrame:
    """Add `keep` and `drop_reason`: as many labelled chains with an error as without (the paper keeps
    positive and negative examples balanced); the larger side is sampled down with `seed`, unlabelled
    rows get drop_reason `unlabelled`. Nothing is removed."""
    labelled = pl.col("status") == "labelled"
    ids = rows.with_row_index("_i")
    wrong = ids.filter(labelled & pl.col("first_error_step").is_not_null())["_i"]
    right = ids.filter(labelled & pl.col("first_error_step").is_null())["_i"]
    size = min(wrong.len(), right.len())
    kept = set(wrong.sample(size, seed=seed).to_list()) | set(right.sample(size, seed=seed).to_list())
    keep = pl.Series("keep", [i in kept for i in range(rows.height)], dtype=pl.Boolean)
    reason = [None if k else ("balance" if s == "labelled" else "unlabelled") for k, s in zip(keep, rows["status"])]
    return rows.with_columns(keep, pl.Series("drop_reason", reason, dtype=pl.String))


def label_omegaprm(
    chains: pl.DataFrame, prompts: pl.DataFrame, *, cfg: ProcessConfig, verify_cfg: VerifyConfig, engine: Engine,
    checkpoints: Checkpoints,
) -> pl.DataFrame:
    """OmegaPRM labels of the kept chains, one checkpoint a question: a rerun after a crash (even
    kill -9) loads the finished questions and searches only the rest. With `process.balance`, as many
    chains with an error as without are kept."""
    search = OmegaConfig(rollouts_per_check=cfg.rollouts, budget=cfg.budget, max_tokens=cfg.max_tokens,
                         temperature=cfg.temperature, seed=cfg.seed)
    labelled = omega_label(
        chains.filter(pl.col("keep")), prompts.select("prompt_id", "reference"), engine=engine, cfg=search,
        verify_cfg=verify_cfg, done=checkpoints.load(), on_question_done=checkpoints.save,
    )
    if cfg.balance:
        labelled = balance(labelled, seed=cfg.seed).filter(pl.col("keep")).drop("keep", "drop_reason")
    return labelled
