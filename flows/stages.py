"""Every stage of both recipes as a Prefect task: the pure function, its name, its output schemas, and
the line it logs. Nothing else: the logic is in tasks/, the machinery in flows.stage."""

from __future__ import annotations

import polars as pl

from prefmill.flows.stage import stage_task
from prefmill.schemas import tables as t
from prefmill.tasks.preference import cream, filters, judge, pairs
from prefmill.tasks.process import balance, chains, consensus, mc_label, omegaprm
from prefmill.tasks.rise import inject
from prefmill.tasks.rise import pairs as rise_pairs
from prefmill.tasks.sampling import consistency, decontaminate, generate, verify
from prefmill.tasks.stats import rise_stats


def _kept(frame: pl.DataFrame) -> str:
    return f"{int(frame['keep'].sum())} of {frame.height} kept"


def _engine_failed(column: str):
    """A result with a row whose `column` records an engine failure: recomputed on a rerun, not reused."""
    return lambda frame, *_: bool(frame[column].cast(pl.String).str.starts_with("engine_error").any())


# --- sampling (both recipes) ---
decontaminate_task = stage_task(
    decontaminate.decontaminate_prompts, name="decontaminate", outputs=(t.PROMPTS, t.DECONTAMINATION),
    note=lambda kept, checked: f"{checked.height - kept.height} of {checked.height} prompts overlap the eval sets, dropped",
)
generate_task = stage_task(
    generate.generate_chunk, name="generate", outputs=t.SAMPLES,
    note=lambda s: f"{s.height} samples, {int(s['num_tokens'].sum())} tokens",
    failed=lambda s: bool(s["error"].is_not_null().any()),
)
concat_task = stage_task(generate.concat_samples, name="samples", outputs=t.SAMPLES, note=lambda s: f"{s.height} samples")
verify_task = stage_task(
    verify.verify, name="verify", outputs=t.VERIFIED,
    note=lambda v: f"{int(v['correct'].sum())} of {v.height} samples correct",
)
vote_task = stage_task(
    consistency.vote, name="vote", outputs=(t.VOTED, t.VOTES),
    note=lambda _, votes: f"{votes.height} prompts, mean vote share {votes['vote_share'].mean() or 0:.2f}",
)

# --- preference ---
judge_pointwise_task = stage_task(
    judge.score_samples, name="judge-pointwise", outputs=t.JUDGED,
    note=lambda s: f"{int(s['judge_score'].is_not_null().sum())} samples scored, "
                   f"{int(s['judge_parse_failures'].fill_null(0).sum())} unparsable outputs",
    failed=_engine_failed("judge_parse_error"),
)
rejudge_task = stage_task(  # Future-Guided Chosen: another model's samples scored by this run's judge
    judge.rescore_samples, name="judge-future", outputs=t.JUDGED,
    note=lambda s: f"{int(s['judge_score'].is_not_null().sum())} future samples scored",
    failed=_engine_failed("judge_parse_error"),
)
pairs_task = stage_task(pairs.build_pairs, name="pairs", outputs=t.PAIR_CANDIDATES, note=_kept)
judge_pairwise_task = stage_task(
    judge.judge_kept_pairs, name="judge-pairwise", outputs=t.PAIRWISE_VERDICTS,
    note=lambda v: f"{v.height} pairs, {int(v['swap_consistent'].sum() or 0)} swap-consistent",
    failed=_engine_failed("judge_parse_error"),
)
cream_judge_task = stage_task(  # CREAM: both iterations' judges score this iteration's responses (shared prompts)
    cream.score_shared_responses, name="cream-judge", outputs=(t.POINTWISE_VERDICTS, t.POINTWISE_VERDICTS),
    note=lambda now, before: f"{before.height} responses scored by the previous iteration's judge, "
                             f"{int(before['judge_score'].is_not_null().sum())} parsed",
    failed=lambda now, before: _engine_failed("judge_parse_error")(now) or _engine_failed("judge_parse_error")(before),
)
filters_task = stage_task(filters.filter_pairs, name="filters", outputs=t.FILTERED_PAIRS, note=_kept)

# --- RISE ---
rise_task = stage_task(
    inject.inject, name="rise", outputs=t.RISE_EDITS,
    note=lambda e: "{kept} of {edits} edits kept; dropped {dropped}".format(**rise_stats(e)),
    failed=_engine_failed("drop_reason"),
)
mix_rise_task = stage_task(rise_pairs.mix, name="mix-rise", outputs=t.FILTERED_PAIRS, note=_kept)

# --- process supervision ---
chains_task = stage_task(chains.build_chains, name="chains", outputs=t.CHAINS, note=_kept)
mc_label_task = stage_task(
    mc_label.label_mc, name="mc-label", outputs=t.STEP_LABELS,
    note=lambda s: f"{s.height} chains, {int(s['rollout_tokens'].sum() or 0)} rollout tokens",
    failed=lambda s: bool(s["failed_steps"].fill_null(0).gt(0).any()),
)
omegaprm_task = stage_task(
    omegaprm.label_omegaprm, name="omegaprm", outputs=t.STEP_LABELS,
    note=lambda s: f"{s.height} chains, {int(s['rollout_tokens'].sum() or 0)} rollout tokens",
    failed=_engine_failed("status"),
)
consensus_task = stage_task(
    consensus.consensus_filter, name="consensus", outputs=t.CONSENSUS, note=_kept, failed=_engine_failed("judge_parse_error")
)
balance_task = stage_task(balance.balance, name="balance", outputs=t.CONSENSUS, note=_kept)
