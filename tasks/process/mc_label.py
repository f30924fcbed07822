"""MC step labels (Math-Shepherd, Wang et al. 2024): from every step prefix of a solution, k rollouts.

For step k of a chain the engine continues the partial assistant turn "step 1 .. step k" (a
`continue_final` request) `rollouts` times; each rollout is the prefix plus its continuation, and its
final answer is verified against the reference with math-verify (`prefmill.answers.judge`).

- soft label (Math-Shepherd SE) `values[k]` = share of the step's k fresh rollouts that verify
  correct, published with its n (`rollout_counts`);
- hard label (Math-Shepherd HE) `labels[k]` = at least one rollout correct, then the rules of
  `tasks.process.step_labels`: monotone (False from the first False on, where Math-Shepherd takes HE
  per step as it comes and may go False then True, a label no PRM should learn) and, with
  `witness`, all True for a chain whose own final answer verifies;
- the complete solution (the last prefix, when it states its final answer) is not rolled out: its
  label and value are the chain's own verdict (1 or 0, n = 0), since a rollout could only append text
  after `#### x`;
- `first_error_step` = the first step whose hard label is False (0-based).

Input `chains`: `chain_id`, `prompt_id`, `prompt` (chat messages with the question), `steps`
(list[str], e.g. from `tasks.steps.steps_frame`). Input `references`: `prompt_id`, `reference` (a
worked solution or a bare answer). Output: one row per chain, in input order, see `mc_label`.

All prefixes of all chains go to the engine in one `generate` call. A prefix request the engine
failed gives null `values`/`labels` and 0 `rollout_counts` at that step and counts in `failed_steps`;
nothing is padded.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from prefmill.config import ProcessConfig, VerifyConfig
from prefmill.engines.base import Engine, GenRequest, GenResult, Sampling
from prefmill.errors import InputError
from prefmill.schemas.tables import STEP_LABELS
from prefmill.schemas.validate import polars_schema
from prefmill.seeds import rollout_seed
from prefmill.tasks.process.step_labels import chain_verdict, first_error, is_complete, monotone_labels
from prefmill.answers import judge, reference_final_answer


METHOD = "mc"


OUTPUT_SCHEMA = polars_schema(STEP_LABELS, columns=(
    "chain_id", "prompt_id", "prompt", "completions", "labels", "values", "rollout_counts", "rollouts_correct",
    "first_error_step", "failed_steps", "method", "engine", "rollout_tokens",
))


def step_prefix(steps: Sequence[str], k: int) -> str:
    """The partial assistant turn holding the first `k` steps: one a line, ending with a newline."""
    return "\n".join(steps[:k]) + "\n"


def _check_chains(chains: pl.DataFrame) -> None:
    missing = [c for c in ("chain_id", "prompt", "steps") if c not in chains.columns]
    if missing:
        raise InputError(
            f"mc_label: the chains table lacks column(s) {missing}; it has {chains.columns}",
            hint="chains need chain_id, prompt_id, prompt (chat messages) and steps (list of step texts)",
        )
    duplicated = chains.filter(pl.col("chain_id").is_duplicated())["chain_id"].unique(maintain_order=True)
    if duplicated.len():
        raise InputError(f"mc_label: chain_id values repeat: {duplicated.to_list()[:5]}", hint="give every chain its own id")
    nulls = chains.filter(pl.col("steps").is_null() | pl.col("prompt").is_null())["chain_id"]
    if nulls.len():
        raise InputError(
            f"mc_label: chains {nulls.to_list()[:5]} have null steps or prompt",
            hint="split the solutions first (tasks.steps.steps_frame) and drop solutions without text",
        )


def build_rollout_requests(
    chains: pl.DataFrame, *, rollouts: int, max_tokens: int, temperature: float, seed: int, top_p: float = 1.0
) -> list[GenRequest]:
    """One `continue_final` request per step prefix k = 1..K of every chain, id `f"{chain_id}|{k}"`,
    but none for a complete solution (the last prefix, when it states its final answer).

    Each asks for `rollouts` samples seeded by the prefix (`prefmill.seeds.rollout_seed`), so a prefix
    gets the same rollouts whatever else is in the batch, and OmegaPRM's checks of it reuse them. `top_p` is 1 by default: the estimate is of
    the policy's own success rate, not of a truncated one.
    """
    _check_chains(chains)
    requests = []
    for chain_id, prompt, steps in zip(chains["chain_id"], chains["prompt"], chains["steps"]):
        messages = tuple({"role": m["role"], "content": m["content"]} for m in prompt)
        question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        last = len(steps) - is_complete(steps)  # the complete solution is not rolled out
        for k in range(1, last + 1):
            request_id = f"{chain_id}|{k}"
            turn = (*messages, {"role": "assistant", "content": step_prefix(steps, k)})
            requests.append(
                GenRequest(
                    request_id=request_id,
                    messages=turn,
                    sampling=Sampling(
                        n=rollouts,
                        temperature=temperature,
                        top_p=top_p,
                        max_tokens=max_tokens,
                        seed=rollout_seed(seed, turn),
                        logprobs=False,
                    ),
                    continue_final=True,
                    purpose="rollout",
                    inputs={"question": question},
                )
            )
    return requests


def _score_step(prefix: str, result: GenResult, reference: str | None, cfg: VerifyConfig) -> tuple[int, int, int]:
    """(rollouts judged, rollouts correct, tokens generated) for one step prefix."""
    judged = correct = tokens = 0
    for c in result.completions:
        tokens += c.num_tokens
        if c.finish_reason == "error":
            continue
        judged += 1
        _, ok, _ = judge(
            prefix + c.text, reference, truncated=c.finish_reason == "length", timeout_seconds=cfg.timeout_seconds
        )
        correct += ok
    return judged, correct, tokens


def mc_label(
    chains: pl.DataFrame,
    references: pl.DataFrame,
    *,
    engine: Engine,
    rollouts: int,
    max_tokens: int,
    temperature: float,
    seed: int,
    verify_cfg: VerifyConfig,
    top_p: float = 1.0,
    witness: bool = True,
) -> pl.DataFrame:
    """Math-Shepherd step labels for every chain, from one `engine.generate` call.

    Output, one row per chain in input order: `chain_id`, `prompt_id`, `prompt`, `completions` (the
    steps), `labels` (list[bool], hard), `values` (list[float], soft), `rollout_counts` and
    `rollouts_correct` (list[int] per step), `first_error_step` (int or null: null when every label is
    True or when a failed step comes before the first False), `failed_steps` (prefix requests the
    engine failed), `method` ("mc"), `engine` (fingerprint), `rollout_tokens` (tokens generated).

    Raises `InputError` when a chain's `prompt_id` has no reference: its rollouts could not be judged
    and every label would silently read False.
    """
    if rollouts < 1 or max_tokens < 1:
        raise ValueError(f"mc_label: rollouts and max_tokens must be >= 1; got {rollouts=}, {max_tokens=}")
    for table, needed in ((chains, ("prompt_id",)), (references, ("prompt_id", "reference"))):
        if missing := [c for c in needed if c not in table.columns]:
            raise InputError(
                f"mc_label: a table lacks column(s) {missing}; it has {table.columns}",
                hint="chains need prompt_id; references need prompt_id and reference (the prompts table)",
            )
    requests = build_rollout_requests(
        chains, rollouts=rollouts, max_tokens=max_tokens, temperature=temperature, seed=seed, top_p=top_p
    )
    refs = dict(zip(references["prompt_id"], references["reference"]))
    unreferenced = [cid for cid, pid in zip(chains["chain_id"], chains["prompt_id"]) if refs.get(pid) is None]
    if unreferenced:
        raise InputError(
            f"mc_label: {len(unreferenced)} chain(s) have no reference for their prompt_id, e.g. {unreferenced[:5]}",
            hint="pass the prompts table (prompt_id, reference) the chains were generated from",
        )
    results = {r.request_id: r for r in engine.generate(requests)} if requests else {}

    rows = []
    for chain in chains.select("chain_id", "prompt_id", "prompt", "steps").iter_rows(named=True):
        reference = reference_final_answer(refs[chain["prompt_id"]])
        steps = chain["steps"]
        labels, values, counts, corrects = [], [], [], []
        failed = tokens = 0
        complete, correct_chain = is_complete(steps), chain_verdict(steps, reference, verify_cfg)
        for k in range(1, len(steps) + 1):
            if complete and k == len(steps):  # the chain's own verdict, from no rollout
                counts.append(0)
                corrects.append(0)
                values.append(float(correct_chain))
                labels.append(correct_chain)
                continue
            result = results[f"{chain['chain_id']}|{k}"]
            judged, correct, used = (0, 0, 0) if result.error is not None else _score_step(
                step_prefix(steps, k), result, reference, verify_cfg
            )
            failed += result.error is not None
            tokens += used
            counts.append(judged)
            corrects.append(correct)
            values.append(correct / judged if judged else None)
            labels.append(correct > 0 if judged else None)
        labels = monotone_labels(labels, chain_correct=witness and correct_chain)
        rows.append(
            {
                "chain_id": chain["chain_id"],
                "prompt_id": chain["prompt_id"],
                "prompt": chain["prompt"],
                "completions": steps,
                "labels": labels,
                "values": values,
                "rollout_counts": counts,
                "rollouts_correct": corrects,
                "first_error_step": first_error(labels),
                "failed_steps": failed,
                "method": METHOD,
                "engine": engine.fingerprint,
                "rollout_tokens": tokens,
            }
        )
    return pl.DataFrame(rows, schema=OUTPUT_SCHEMA)


def label_mc(
    chains: pl.DataFrame, prompts: pl.DataFrame, *, cfg: ProcessConfig, verify_cfg: VerifyConfig, engine: Engine
) -> pl.DataFrame:
    """Math-Shepherd labels of the kept chains (`mc_label` with the recipe's `process` settings)."""
    return mc_label(
        chains.filter(pl.col("keep")), prompts.select("prompt_id", "reference"), engine=engine,
        rollouts=cfg.rollouts, max_tokens=cfg.max_tokens, temperature=cfg.temperature, seed=cfg.seed,
        verify_cfg=verify_cfg, witness=cfg.witness,
    )
