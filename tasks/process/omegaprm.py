"""OmegaPRM step labels (Luo et al. 2024, "Improve Mathematical Reasoning in Language Models by Automated
Process Supervision"): per question a tree of states (step prefixes) with MC values, a pool of
(state, rollout) candidates, and the paper's loop: select the max Q + U candidate, binary-search its
rollout for the first step whose prefix has MC 0, add what the search learnt to the tree, repeat
within a rollout budget (`tasks.process.omegaprm_tree`).

- State: a step prefix (`mc_label.step_prefix`; the root is the bare question). Its MC value is the
  share of k fresh rollouts from it that verify correct (`prefmill.answers.judge`), drawn from the
  prefix's own seeded stream, so MC and OmegaPRM share rollouts through the cache.
- Candidates: every input chain whose final answer is wrong (state = root); with `explore`, also every
  wrong rollout of a state with MC > 0 (the paper's 0 < MC(s) < 1), state = its prefix.
  Q(s, r) = alpha^(1 - MC(s)) * beta^(len(r) / L), U(s) = c_puct * sqrt(sum N) / (1 + N(s)), N = visits.
- Check: k rollouts at once; with `early_stop` in doubling batches, ending at the first correct one.
- Evidence: a verified-correct solution (an input chain, a rollout) is a witness for every prefix of
  it: such a prefix is positive whatever its own rollouts said, so hard labels are monotone and a
  first error is never put before a witnessed prefix (a candidate is searched again if a witness
  turns up after it finished). When no chain of a question is right, the root is checked first; a
  root with MC 0 makes the question `unsolved` (the paper drops such questions).

Where this differs from the paper, and why:
- The input chains are searched before explored rollouts (Q + U orders each group): the stage exists
  to label its chains; the paper has no such chains, only the root's rollouts.
- A correct chain is not searched (all True, as in the paper) and a searched rollout's own outcome is
  never counted in any value: counting it would call a prefix wrong after k - 1 fresh failures.
- A check cut short by `early_stop` publishes a null value with its n (`rollout_counts`): a share that
  stops at the first success is no unbiased estimate. The paper always draws k (the default here).
- Several candidates may be searched at once (`width`), to batch the engine; the paper takes one.
- Output is rows, not the tree: one per input chain (source `chain`) and per searched rollout (source
  `rollout`); a rollout's own state is valued in the row that checked it only, not once per wrong
  rollout it produced, which would weight each state by its own outcome.

Labels (TRL stepwise, bool for every step): as in Math-Shepherd / PRM800K stepwise sets the
`completions` are cut after the first error, so `labels` is [True] * e + [False], or all True without
an error; `values`/`rollout_counts` as `tasks.process.omegaprm_values` says. Every round, the checks of
all pending questions go to the engine in one `generate` call.
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
    "chain_id", "prompt_id", "prompt", "completions", "labels", "values", "rollout_counts", "rollouts_correct",
    "first_error_step",
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


def label_omegaprm(
    chains: pl.DataFrame, prompts: pl.DataFrame, *, cfg: ProcessConfig, verify_cfg: VerifyConfig, engine: Engine,
    checkpoints: Checkpoints,
) -> pl.DataFrame:
    """OmegaPRM labels of the kept chains, one checkpoint a question: a rerun after a crash (even
    kill -9) loads the finished questions and searches only the rest; a question whose search met an
    engine failure is searched again (the rollout cache serves what did succeed)."""
    search = OmegaConfig(rollouts_per_check=cfg.rollouts, budget=cfg.budget, max_tokens=cfg.max_tokens,
                         temperature=cfg.temperature, seed=cfg.seed, alpha=cfg.alpha, beta=cfg.beta, L=cfg.L,
                         c_puct=cfg.c_puct, width=cfg.width, explore=cfg.explore, early_stop=cfg.early_stop)
    done = {pid: doc for pid, doc in checkpoints.load().items()
            if not any(row["status"] == "engine_error" for row in doc.get("rows", []))}
    return omega_label(
        chains.filter(pl.col("keep")), prompts.select("prompt_id", "reference"), engine=engine, cfg=search,
        verify_cfg=verify_cfg, done=done, on_question_done=checkpoints.save,
    )
