"""Whether an edited solution is a usable hard negative, and what exactly the edit changed (RISE).

An edit is kept when it changes the step (not empty, not the same words), does not admit the error
(phrases such as "wait" or "mistake" it holds more often than the original), changes at most a share of
the step's words, and is wrong: the verifier rejects its final answer (a continuation, in
`step_then_continue`, must state it: `#### x`, `\\boxed{x}` or "the answer is x"), or, in `edit_only` (the
rest of the solution kept as it was), the edited step's arithmetic no longer checks out. Differences are
word-level and given as character spans, so they are independent of any tokenizer.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from prefmill.tasks.rise.arithmetic import arithmetic_checks

from prefmill.answers import judge, states_answer
from prefmill.config import RiseConfig, VerifyConfig

# drop_reason values, in the order they are checked.
EMPTY_EDIT = "empty_edit"
UNCHANGED = "unchanged"
ADMITS_ERROR = "admits_error"
TOO_MANY_CHANGES = "too_many_changes"
NO_CHECKABLE_ARITHMETIC = "no_checkable_arithmetic"  # edit_only: a step (original or edit) shows no right calculation
ARITHMETIC_STILL_CHECKS = "arithmetic_still_checks"  # edit_only
NO_FINAL_ANSWER = "no_final_answer"  # none stated explicitly, cut off mid-work, or unparsable
ANSWER_STILL_RIGHT = "answer_still_right"

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|\w+|[^\w\s]")


def token_diff(chosen: str, rejected: str) -> list[dict[str, Any]]:
    """Word-level differences as character spans in both texts (tokenizer-free: a trainer maps them
    onto its own tokens with the tokenizer's offset mapping)."""
    a, b = list(_TOKEN.finditer(chosen)), list(_TOKEN.finditer(rejected))
    matcher = difflib.SequenceMatcher(None, [m.group() for m in a], [m.group() for m in b], autojunk=False)

    def at(tokens, i, j, text):
        if i < j:
            return tokens[i].start(), tokens[j - 1].end()
        position = tokens[i].start() if i < len(tokens) else len(text)
        return position, position

    hunks = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        (cs, ce), (rs, re_) = at(a, i1, i2, chosen), at(b, j1, j2, rejected)
        hunks.append({"op": op, "chosen_start": cs, "chosen_end": ce, "rejected_start": rs, "rejected_end": re_})
    return hunks


def changed_share(original: str, edited: str) -> float:
    """Share of tokens not kept from `original` to `edited`, over the longer of the two."""
    a, b = _TOKEN.findall(original), _TOKEN.findall(edited)
    if not a and not b:
        return 0.0
    kept = sum(block.size for block in difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks())
    return round(1 - kept / max(len(a), len(b)), 4)


def edit_span(original: str, edited: str, offset: int) -> dict[str, int]:
    """Where the edit is in the rejected text: from the first to the last changed token of the step."""
    hunks = token_diff(original, edited)
    if not hunks:
        return {"start": offset, "end": offset}
    return {"start": offset + hunks[0]["rejected_start"], "end": offset + hunks[-1]["rejected_end"]}


def _widened(text: str, position: int, *, back: bool) -> int:
    """`position` moved to the start (`back`) or end of the token it falls inside, if any."""
    for m in _TOKEN.finditer(text):
        if m.start() < position < m.end():
            return m.start() if back else m.end()
    return position


def edit_spans(chosen: str, rejected: str) -> tuple[dict[str, int], dict[str, int]]:
    """The one stretch where two texts differ, widened to whole words, as a span in each: outside the
    spans the texts are the same characters (unlike `token_diff`, which ignores whitespace)."""
    limit = min(len(chosen), len(rejected))
    head = next((i for i in range(limit) if chosen[i] != rejected[i]), limit)
    tail = next((i for i in range(limit - head) if chosen[-1 - i] != rejected[-1 - i]), limit - head)
    # The head and the tail are common to both texts: widening moves them by the same characters in both.
    head = min(_widened(chosen, head, back=True), _widened(rejected, head, back=True))
    tail = min(len(chosen) - _widened(chosen, len(chosen) - tail, back=False),
               len(rejected) - _widened(rejected, len(rejected) - tail, back=False))
    return ({"start": head, "end": len(chosen) - tail}, {"start": head, "end": len(rejected) - tail})


def _admissions(text: str, phrases: tuple[str, ...]) -> int:
    return sum(len(re.findall(rf"(?<!\w){re.escape(p)}(?!\w)", text, flags=re.IGNORECASE)) for p in phrases)


def check_edit(
    *, chosen: str, rejected: str, original_step: str, edited_step: str, reference_answer: str | None,
    mode: str, cfg: RiseConfig, verify_cfg: VerifyConfig, truncated: bool = False,
) -> tuple[str | None, str | None]:
    """(drop_reason or None, the rejected text's final answer); `truncated`: the continuation hit max_tokens."""
    answer, correct, verify_error = judge(rejected, reference_answer, truncated=truncated,
                                          timeout_seconds=verify_cfg.timeout_seconds)
    if not edited_step.strip():
        return EMPTY_EDIT, answer
    if " ".join(edited_step.split()) == " ".join(original_step.split()):
        return UNCHANGED, answer
    if _admissions(rejected, cfg.admission_phrases) > _admissions(chosen, cfg.admission_phrases):
        return ADMITS_ERROR, answer
    if changed_share(original_step, edited_step) > cfg.max_changed_share:
        return TOO_MANY_CHANGES, answer
    if mode == "edit_only":  # the original step's arithmetic must check out and the edit's must not
        if arithmetic_checks(original_step) is not True or (checks := arithmetic_checks(edited_step)) is None:
            return NO_CHECKABLE_ARITHMETIC, answer
        return (ARITHMETIC_STILL_CHECKS if checks else None), answer
    if verify_error is not None:  # no answer, cut off mid-work, unparsable, or no reference to compare with
        return NO_FINAL_ANSWER, answer
    if mode == "step_then_continue" and not states_answer(rejected):  # a trailing number is no answer the error reached
        return NO_FINAL_ANSWER, answer
    return (ANSWER_STILL_RIGHT if correct else None), answer
