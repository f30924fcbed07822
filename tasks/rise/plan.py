"""Which RISE edits to make: the correct solutions to edit, the editable steps of each, seeded (error
type, step) draws, the edit prompt, the guided-decoding template of an edit, and reading an edit back."""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

import polars as pl

from prefmill.answers import find_answer
from prefmill.config import RiseConfig
from prefmill.rise_config import RULE_ERROR_TYPES
from prefmill.tasks.preference.pairs import reference_as_solution
from prefmill.tasks.process.steps import split_steps
from prefmill.tasks.solution_text import STEP_LABEL
from prefmill.tasks.rise.arithmetic import NUMBER


@dataclass(frozen=True)
class EditPlan:
    """One edit to make: a correct solution (a row of `solutions`), the step to edit, the error type."""

    edit_id: str
    solution_id: str
    prompt_id: str
    prompt: list[dict[str, str]]  # the messages the solution answered
    question: str
    text: str  # the solution as shown (a reference without its calculator annotations)
    source: str  # sample | reference
    sample_id: str | None
    engine: str
    answer: str | None
    reference_answer: str | None
    annotated: str | None  # a GSM8K reference with its `<<a op b=c>>` annotations, for the rule editor
    error_type: str
    instruction: str
    steps: list[tuple[int, int]]  # editable step spans of `text`
    step_index: int

    @property
    def step(self) -> str:
        start, end = self.steps[self.step_index]
        return self.text[start:end]

    def spliced(self, edited_step: str) -> str:
        """The solution with the planned step replaced by `edited_step`, the rest as it was."""
        start, end = self.steps[self.step_index]
        return self.text[:start] + edited_step + self.text[end:]

    def partial(self, edited_step: str) -> str:
        """The solution up to and including `edited_step`: the prefix a continuation finishes."""
        return self.text[: self.steps[self.step_index][0]] + edited_step + "\n"


def seeded_rng(*parts: object) -> random.Random:
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


def plan_edits(solutions: pl.DataFrame, *, cfg: RiseConfig) -> list[EditPlan]:
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
        rng = seeded_rng(cfg.seed, solution["solution_id"])
        for name in rng.sample(sorted(types), min(cfg.edits_per_solution, len(types))):
            k = rng.choice(numeric or list(range(len(steps))))
            plans.append(EditPlan(edit_id=f"{solution['solution_id']}:{name}", error_type=name,
                                  instruction=types[name], steps=steps, step_index=k, **solution))
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
