"""Every table prefmill writes, as pyarrow schemas. Message lists follow TRL's conversational format."""

from __future__ import annotations

import pyarrow as pa

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES = pa.list_(MESSAGE)
SPAN = pa.struct([("start", pa.int32()), ("end", pa.int32())])  # [start, end) character offsets
EDIT_DIFF = pa.list_(
    pa.struct([("op", pa.string()), ("chosen_start", pa.int32()), ("chosen_end", pa.int32()),
               ("rejected_start", pa.int32()), ("rejected_end", pa.int32())])
)

PROMPTS = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("question", pa.string(), nullable=False),
        pa.field("reference", pa.string()),  # the source's reference: a worked solution or a bare answer
        pa.field("reference_answer", pa.string()),  # its final answer (after `####` for GSM8K)
        pa.field("source_row", pa.int64(), nullable=False),  # 0-based row in the source, for error messages
    ]
)

SAMPLES = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("sample_index", pa.int32(), nullable=False),
        pa.field("prompt", MESSAGES, nullable=False),
        pa.field("completion", pa.string(), nullable=False),
        pa.field("num_tokens", pa.int32(), nullable=False),
        pa.field("mean_logprob", pa.float64()),
        pa.field("finish_reason", pa.string(), nullable=False),  # stop | length | error
        pa.field("seed", pa.int64()),
        pa.field("engine", pa.string(), nullable=False),  # engine fingerprint
        pa.field("error", pa.string()),  # set when the engine failed this request after retries
    ]
)

VERIFIED = pa.schema(
    list(SAMPLES)
    + [
        pa.field("reference_answer", pa.string()),
        pa.field("extracted", pa.string()),  # the final answer found in the completion
        pa.field("correct", pa.bool_(), nullable=False),
        pa.field("verify_error", pa.string()),  # why no verdict could be reached, else null
    ]
)

# The `samples` config of a version: verified samples plus vote and judge columns (null when off).
SCORED = pa.schema(
    list(VERIFIED)
    + [
        pa.field("answer_class", pa.int32()),  # math-verify equivalence class within the prompt
        pa.field("in_majority", pa.bool_()),
        pa.field("class_share", pa.float64()),  # share of the prompt's samples in this answer class
        pa.field("judge_score", pa.float64()),  # mean pointwise rubric score, 1-10
        pa.field("judge_scores", pa.list_(pa.int64())),
        pa.field("judge_rationale", pa.string()),
        pa.field("judge_parse_error", pa.string()),
        pa.field("judge_raw", pa.list_(pa.string())),  # the judge's raw outputs, kept for audit
        pa.field("score", pa.float64()),  # what pairs rank by, in [0, 1]
    ]
)

PAIRS = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("prompt", MESSAGES, nullable=False),
        pa.field("chosen", MESSAGES, nullable=False),
        pa.field("rejected", MESSAGES, nullable=False),
        pa.field("strategy", pa.string(), nullable=False),
        pa.field("chosen_source", pa.string(), nullable=False),  # sample | reference | future
        pa.field("chosen_sample_id", pa.string()),
        pa.field("rejected_sample_id", pa.string(), nullable=False),
        pa.field("chosen_answer", pa.string()),
        pa.field("rejected_answer", pa.string()),
        pa.field("reference_answer", pa.string()),
        pa.field("chosen_logprob", pa.float64()),
        pa.field("rejected_logprob", pa.float64()),
        pa.field("chosen_score", pa.float64()),  # in [0, 1]: verifier, blended with the judge when on
        pa.field("rejected_score", pa.float64()),
        pa.field("margin", pa.float64()),
        # Provenance of each side: engine fingerprint ("reference" for a reference solution) and the
        # version whose samples it came from (null: this version).
        pa.field("chosen_engine", pa.string(), nullable=False),
        pa.field("rejected_engine", pa.string(), nullable=False),
        pa.field("chosen_version", pa.string()),
        pa.field("rejected_version", pa.string()),
        pa.field("difficulty", pa.string()),  # easy | medium | hard | unsolved, from the vote
        pa.field("curriculum_rank", pa.int64(), nullable=False),  # train in this order: easy to hard
        pa.field("judge_prefers", pa.string()),  # chosen | rejected | tie, when judged pairwise
        pa.field("judge_agreement", pa.float64()),  # share of judge verdicts preferring chosen
        pa.field("swap_consistent", pa.bool_()),
        # SCIR: does each reward signal say chosen is better? agree | disagree | missing (asked, no
        # parsable verdict) | null (not available for this pair); the share of them that agree.
        pa.field("scir_pointwise", pa.string()),
        pa.field("scir_pairwise", pa.string()),
        pa.field("scir_verifier", pa.string()),
        pa.field("scir_agreement", pa.float64()),
        # CREAM: consistency rate C = (tau + 1) / 2 of the previous iteration's judge and this one's
        # rankings of this prompt's responses, and that Kendall tau (tau-b); null: not measured.
        pa.field("cream_consistency", pa.float64()),
        pa.field("cream_tau", pa.float64()),
        pa.field("weight", pa.float64(), nullable=False),  # 1, or C under `filters.cream: weight`
        pa.field("label_smoothing", pa.float64()),  # 1 - C under `cream: weight`, else 0 (the cDPO epsilon)
        # RISE pairs (strategy `rise`): the rejected side is the chosen one with one subtle error.
        pa.field("error_type", pa.string()),  # from the error catalogue, e.g. change_number
        pa.field("edited_step", pa.int32()),  # 0-based step of the chosen text that was edited
        pa.field("edit_span", SPAN),  # characters of the edit in the rejected text
        pa.field("edit_diff", EDIT_DIFF),  # word-level differences, as character spans in both texts
        pa.field("changed_share", pa.float64()),  # share of the edited step's words that changed (the step only)
        # share of the words that changed between the published chosen and rejected texts: the whole
        # solutions, so a rewritten continuation after the edited step counts here, not in changed_share
        pa.field("sides_changed_share", pa.float64()),
    ]
)

VOTES = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("n_samples", pa.int64(), nullable=False),
        pa.field("n_answered", pa.int64(), nullable=False),
        pa.field("n_classes", pa.int64(), nullable=False),
        pa.field("majority_answer", pa.string()),
        pa.field("vote_share", pa.float64(), nullable=False),
        pa.field("weighted_answer", pa.string()),
        pa.field("weighted_share", pa.float64(), nullable=False),
        pa.field("pass_rate", pa.float64()),
        pa.field("label_source", pa.string(), nullable=False),  # reference | vote
        pa.field("label_confidence", pa.float64(), nullable=False),
        pa.field("difficulty", pa.string()),
    ]
)

# TRL's stepwise-supervision format (prompt, completions, labels) plus soft values and provenance.
STEPS = pa.schema(
    [
        pa.field("prompt", pa.string(), nullable=False),  # the question, as TRL's stepwise format has it
        pa.field("completions", pa.list_(pa.string()), nullable=False),  # the steps
        pa.field("labels", pa.list_(pa.bool_()), nullable=False),  # hard: the step can still reach the answer
        pa.field("values", pa.list_(pa.float64())),  # soft: share of rollouts reaching the answer
        pa.field("rollout_counts", pa.list_(pa.int32())),
        pa.field("first_error_step", pa.int32()),  # 0-based; null: no wrong step found
        pa.field("method", pa.string(), nullable=False),  # mc | omegaprm
        pa.field("chain_id", pa.string(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("judge_first_error", pa.int32()),  # consensus judge's answer, when asked
        pa.field("engine", pa.string(), nullable=False),
    ]
)

# Step-level preference pairs (Step-DPO): same prefix, a next step that can still reach the answer
# against one that cannot; TRL conversational format with the shared prefix in chosen and rejected.
STEP_PAIRS = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("prompt", MESSAGES, nullable=False),
        pa.field("chosen", MESSAGES, nullable=False),
        pa.field("rejected", MESSAGES, nullable=False),
        pa.field("prefix_steps", pa.int32(), nullable=False),
        pa.field("chosen_chain_id", pa.string(), nullable=False),
        pa.field("rejected_chain_id", pa.string(), nullable=False),
        pa.field("chosen_value", pa.float64()),
        pa.field("rejected_value", pa.float64()),
        pa.field("margin", pa.float64()),
        pa.field("kind", pa.string(), nullable=False),  # first_error | contrast
        pa.field("method", pa.string(), nullable=False),
    ]
)

# RISE step-level pairs (Step-DPO, as kaishxu/RISE): one row per kept RISE edit; the same correct steps
# before it, then the original step (chosen) against the edited one (rejected); nothing after the step.
# Convention (as STEP_PAIRS, tasks.process.step_pairs.merge_prefix): `prompt` is the question's messages
# only, and each side is ONE assistant message "prefix + step", so TRL renders the step right after the
# prefix, never after an end-of-turn token; the prefix tokens are the same on both sides and cancel in
# DPO. For Step-DPO's split (prompt + prefix, then the step alone) cut each side at len(prefix).
RISE_STEPS = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),  # the edit's id: `rejected_sample_id` of its `pairs` row
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("prompt", MESSAGES, nullable=False),
        pa.field("prefix", pa.string(), nullable=False),  # the solution's text before the edited step ("" if first)
        pa.field("chosen", MESSAGES, nullable=False),  # [assistant: prefix + original step]
        pa.field("rejected", MESSAGES, nullable=False),  # [assistant: prefix + edited step]
        pa.field("error_type", pa.string(), nullable=False),
        pa.field("edited_step", pa.int32(), nullable=False),  # 0-based step of the chosen solution
        # [start, end) in each side's message content (prefix included: subtract len(prefix) for offsets in
        # the step): the changed words; outside them the two contents are the same characters
        pa.field("edit_span_chosen", SPAN, nullable=False),
        pa.field("edit_span_rejected", SPAN, nullable=False),
        pa.field("changed_share", pa.float64(), nullable=False),  # words changed between the two contents, prefix included
        pa.field("editor", pa.string(), nullable=False),  # llm | rules
        pa.field("chosen_sample_id", pa.string()),  # null when the reference solution was edited
        pa.field("source", pa.string(), nullable=False),  # sample | reference
    ]
)

# --- Intermediate tables: what one stage hands the next (in `<store>/.cache/<dataset>/<stage>/`) ---

def _f(name: str, type_: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


EVAL_QUESTIONS = pa.schema([_f("source", pa.string(), False), _f("question", pa.string())])

# Every prompt with its n-gram overlap with the eval sets; `keep` False: contaminated.
DECONTAMINATION = pa.schema(
    list(PROMPTS) + [_f("overlap", pa.float64(), False), _f("keep", pa.bool_(), False), _f("drop_reason", pa.string())]
)

_VOTE_COLUMNS = [_f("answer_class", pa.int32()), _f("in_majority", pa.bool_()), _f("class_share", pa.float64())]
VOTED = pa.schema(list(VERIFIED) + _VOTE_COLUMNS)  # verified samples with their answer class

# The pointwise judge's columns of one sample (tasks.preference.judge.judge_pointwise).
POINTWISE_VERDICTS = pa.schema([
    _f("sample_id", pa.string(), False), _f("judge_scores", pa.list_(pa.int64())), _f("judge_score", pa.float64()),
    _f("judge_rationale", pa.string()), _f("judge_parse_failures", pa.int64()), _f("judge_parse_error", pa.string()),
    _f("judge_raw", pa.list_(pa.string())), _f("judge_engine", pa.string()),
])
# Samples with judge scores (vote columns null when the vote is off).
JUDGED = pa.schema(list(VERIFIED) + _VOTE_COLUMNS + [f for f in POINTWISE_VERDICTS if f.name not in ("sample_id", "judge_engine")])

_SIDE = [("text", pa.string()), ("sample_id", pa.string()), ("answer", pa.string()), ("logprob", pa.float64()),
         ("score", pa.float64()), ("engine", pa.string()), ("version", pa.string()),
         ("correct", pa.bool_()), ("judge_score", pa.float64())]  # verifier verdict, pointwise judge 1-10 (SCIR)
# Every candidate pair of a strategy, kept or dropped with its reason (tasks.preference.pairs).
PAIR_CANDIDATES = pa.schema(
    [_f("prompt_id", pa.string(), False), _f("reference_answer", pa.string()), _f("keep", pa.bool_(), False),
     _f("drop_reason", pa.string()), _f("chosen_source", pa.string())]
    + [_f(f"chosen_{k}", t) for k, t in _SIDE] + [_f(f"rejected_{k}", t) for k, t in _SIDE]
    + [_f("margin", pa.float64()), _f("prompt", MESSAGES), _f("difficulty", pa.string()),
       _f("curriculum_rank", pa.int64()), _f("pair_id", pa.string()), _f("chosen", MESSAGES),
       _f("rejected", MESSAGES), _f("strategy", pa.string()), _f("weight", pa.float64()),
       _f("label_smoothing", pa.float64())]
)
# Both orders of the pairwise judge for every kept candidate; sides are chosen | rejected | tie | null.
PAIRWISE_VERDICTS = pa.schema([
    _f("pair_id", pa.string(), False), _f("verdicts_ab", pa.list_(pa.string())), _f("verdicts_ba", pa.list_(pa.string())),
    _f("prefers_chosen_share", pa.float64()), _f("swap_consistent", pa.bool_()), _f("judge_prefers", pa.string()),
    _f("judge_parse_failures", pa.int64()), _f("judge_parse_error", pa.string()),
    _f("judge_raw_ab", pa.list_(pa.string())), _f("judge_raw_ba", pa.list_(pa.string())), _f("judge_engine", pa.string()),
])
_RISE_PAIR_COLUMNS = [f for f in PAIRS if f.name in ("error_type", "edited_step", "edit_span", "edit_diff", "changed_share")]
# Candidates after the filters (and, mixed in, the RISE pairs), still with every dropped one.
FILTERED_PAIRS = pa.schema(
    list(PAIR_CANDIDATES)
    + [_f("judge_prefers", pa.string()), _f("judge_agreement", pa.float64()), _f("swap_consistent", pa.bool_()),
       _f("cream_consistency", pa.float64())]
    + [f for f in PAIRS if f.name.startswith("scir_") or f.name == "cream_tau"]
    # CREAM provenance: scored | undefined | not_shared | same_judge | no_previous_iteration (null: off),
    # the version of the previous iteration and its judge's fingerprint
    + [_f("cream_status", pa.string()), _f("cream_version", pa.string()), _f("cream_judge", pa.string())]
    + _RISE_PAIR_COLUMNS
)
# Every RISE edit of a correct solution, kept or dropped with its reason (tasks.rise.inject).
RISE_EDITS = pa.schema([
    _f("edit_id", pa.string(), False), _f("solution_id", pa.string(), False), _f("prompt_id", pa.string(), False),
    _f("source", pa.string()), _f("sample_id", pa.string()), _f("engine", pa.string()), _f("answer", pa.string()),
    _f("reference_answer", pa.string()), _f("error_type", pa.string()), _f("step_index", pa.int32()),
    _f("chosen_text", pa.string()), _f("editor", pa.string()), _f("edit_engine", pa.string()), _f("mode", pa.string()),
    _f("original_step", pa.string()), _f("edited_step", pa.string()), _f("rejected_text", pa.string()),
    _f("rejected_answer", pa.string()), _f("edit_span", SPAN), _f("edit_diff", EDIT_DIFF),
    _f("changed_share", pa.float64()), _f("keep", pa.bool_(), False), _f("drop_reason", pa.string()),
    _f("prompt", MESSAGES),
])
# Solutions split into steps, to label (tasks.process.chains).
CHAINS = pa.schema([
    _f("chain_id", pa.string(), False), _f("prompt_id", pa.string(), False), _f("prompt", MESSAGES),
    _f("steps", pa.list_(pa.string())), _f("keep", pa.bool_(), False), _f("drop_reason", pa.string()),
])
# Step labels of every labelled chain, MC (Math-Shepherd) or OmegaPRM; a method's own columns are null
# in the other's rows.
STEP_LABELS = pa.schema([
    _f("chain_id", pa.string(), False), _f("prompt_id", pa.string(), False), _f("prompt", MESSAGES),
    _f("completions", pa.list_(pa.string())), _f("labels", pa.list_(pa.bool_())), _f("values", pa.list_(pa.float64())),
    _f("rollout_counts", pa.list_(pa.int32())), _f("rollouts_correct", pa.list_(pa.int32())),  # mc
    _f("first_error_step", pa.int32()), _f("failed_steps", pa.int32()),  # failed_steps: mc
    _f("status", pa.string()), _f("source", pa.string()), _f("rollouts", pa.int32()),  # omegaprm
    _f("method", pa.string(), False), _f("engine", pa.string()), _f("rollout_tokens", pa.int64()),
])
# The consensus judge's verdict on a chain (tasks.process.consensus.judge_first_errors).
FIRST_ERROR_VERDICTS = pa.schema([
    _f("chain_id", pa.string(), False), _f("judge_first_error", pa.int32()), _f("judge_says_none", pa.bool_()),
    _f("judge_parse_failures", pa.int64()), _f("judge_parse_error", pa.string()), _f("judge_raw", pa.list_(pa.string())),
    _f("judge_engine", pa.string()),
])
# Step labels with the consensus judge's verdict, `keep` where judge and rollouts agree.
CONSENSUS = pa.schema(
    list(STEP_LABELS)
    + [f for f in FIRST_ERROR_VERDICTS if f.name in ("judge_first_error", "judge_says_none", "judge_parse_error")]
    + [_f("drop_reason", pa.string()), _f("keep", pa.bool_(), False)]
)

# Configs of a dataset version: name -> schema of `data/<config>/<split>-*.parquet`.
VERSION_CONFIGS = {"samples": SCORED, "pairs": PAIRS, "votes": VOTES, "steps": STEPS, "step_pairs": STEP_PAIRS,
                   "rise_steps": RISE_STEPS}

