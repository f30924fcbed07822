"""tasks/rise.py and tasks/edit_checks.py: which edits RISE keeps and why, what a kept edit records, and how RISE pairs mix in."""

from __future__ import annotations

import re

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from prefmill.config import RiseConfig, VerifyConfig, validate_config
from prefmill.engines.scripted import ScriptedEngine, routed
from prefmill.engines.scripted_edits import asked_step, gsm8k_edit_policy
from prefmill.errors import ConfigError
from prefmill.schemas.tables import PAIRS
from prefmill.schemas.validate import conform
from prefmill.tasks.rise import edit_checks
from prefmill.tasks.rise import inject as rise
from prefmill.tasks.rise import pairs as rise_pairs
from prefmill.tasks.rise import plan
from tests.tasks.preference.test_pairs import _prompts, _verified

SOLUTION = "She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.\n#### 18"
QUESTION = "Janet's ducks lay 16 eggs. She eats 3 and bakes with 4, and sells the rest at $2. How much does she make?"
VERIFY = VerifyConfig()


def _check(rejected: str, edited_step: str, *, original_step: str = "She makes 9 * 2 = $18.", mode="step_then_continue",
           cfg: RiseConfig = RiseConfig()) -> str | None:
    return edit_checks.check_edit(chosen=SOLUTION, rejected=rejected, original_step=original_step, edited_step=edited_step,
                           reference_answer="18", mode=mode, cfg=cfg, verify_cfg=VERIFY)[0]


class TestFilters:
    def test_a_subtle_edit_that_moves_the_answer_is_kept(self):
        assert _check("She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 3 = $27.\n#### 27", "She makes 9 * 3 = $27.") is None

    def test_an_edit_that_admits_the_error_is_dropped(self):
        edited = "She makes 9 * 3 = $27, wait, that is a mistake."
        assert _check(f"She sells 16 - 3 - 4 = 9 eggs.\n{edited}\n#### 27", edited) == edit_checks.ADMITS_ERROR

    def test_an_admission_in_the_continuation_counts_too(self):
        rejected = "She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 3 = $27.\nActually, 9 * 2 = 18.\n#### 27"
        assert _check(rejected, "She makes 9 * 3 = $27.") == edit_checks.ADMITS_ERROR

    def test_phrases_the_original_already_uses_do_not_count(self):
        chosen = "Wait time is 16 - 3 - 4 = 9 minutes.\nShe makes 9 * 2 = $18.\n#### 18"
        rejected = "Wait time is 16 - 3 - 4 = 9 minutes.\nShe makes 9 * 3 = $27.\n#### 27"
        reason = edit_checks.check_edit(chosen=chosen, rejected=rejected, original_step="She makes 9 * 2 = $18.",
                                 edited_step="She makes 9 * 3 = $27.", reference_answer="18",
                                 mode="step_then_continue", cfg=RiseConfig(), verify_cfg=VERIFY)[0]
        assert reason is None

    def test_the_phrase_list_is_configurable(self):
        edited = "She makes 9 * 3 = $27, hmm."
        rejected = f"She sells 16 - 3 - 4 = 9 eggs.\n{edited}\n#### 27"
        assert _check(rejected, edited) is None
        assert _check(rejected, edited, cfg=RiseConfig(admission_phrases=("hmm",))) == edit_checks.ADMITS_ERROR

    def test_an_edit_that_leaves_the_answer_right_is_dropped(self):
        rejected = "She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 3 = $18.\n#### 18"
        assert _check(rejected, "She makes 9 * 3 = $18.") == edit_checks.ANSWER_STILL_RIGHT

    def test_an_over_long_edit_is_dropped(self):
        edited = "Each egg sells for two dollars so the ducks bring her 9 * 3 = $27."
        rejected = f"She sells 16 - 3 - 4 = 9 eggs.\n{edited}\n#### 27"
        assert _check(rejected, edited) == edit_checks.TOO_MANY_CHANGES
        assert _check(rejected, edited, cfg=RiseConfig(max_changed_share=1.0)) is None

    def test_unchanged_and_empty_edits_are_dropped(self):
        assert _check(SOLUTION, "She  makes 9 * 2 = $18.") == edit_checks.UNCHANGED
        assert _check(SOLUTION, "  ") == edit_checks.EMPTY_EDIT

    def test_an_edit_without_a_final_answer_is_dropped(self):
        cut = "She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 3 = $27 and"  # stops at a number: no stated answer
        assert _check(cut, "She makes 9 * 3 = $27.") == edit_checks.NO_FINAL_ANSWER
        assert edit_checks.check_edit(chosen=SOLUTION, rejected=cut, original_step="She makes 9 * 2 = $18.",
                               edited_step="She makes 9 * 3 = $27.", reference_answer="18", mode="step_then_continue",
                               cfg=RiseConfig(), verify_cfg=VERIFY, truncated=True)[0] == edit_checks.NO_FINAL_ANSWER
        for stated in ("#### 27", "\\boxed{27}", "The answer is 27."):  # an explicit answer is enough
            assert _check(f"{cut} more.\n{stated}", "She makes 9 * 3 = $27.") is None
        assert _check("She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 3 = $27.\nShe is happy.", "She makes 9 * 3 = $27.") \
            == edit_checks.NO_FINAL_ANSWER

    @pytest.mark.parametrize(
        ("edited", "reason"),
        [("She makes 9 * 2 = $20.", None),
         ("She makes 9 * 3 = $27.", edit_checks.ARITHMETIC_STILL_CHECKS),
         ("She makes nine times two dollars.", edit_checks.NO_CHECKABLE_ARITHMETIC)],
    )
    def test_edit_only_keeps_an_edit_whose_arithmetic_no_longer_checks(self, edited, reason):
        rejected = f"She sells 16 - 3 - 4 = 9 eggs.\n{edited}\n#### 18"
        assert _check(rejected, edited, mode="edit_only", cfg=RiseConfig(max_changed_share=1.0)) == reason


    def test_edit_only_needs_the_original_step_to_check_out(self):
        rejected = "She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $21 in pencils.\n#### 18"
        assert _check(rejected, "She makes 9 * 2 = $21 in pencils.", original_step="She makes 9 * 2 = $20.",
                      mode="edit_only", cfg=RiseConfig(max_changed_share=1.0)) == edit_checks.NO_CHECKABLE_ARITHMETIC


class TestSteps:
    def test_step_labels_and_the_answer_line_are_not_editable(self):
        text = "Step 1: She sells 16 - 3 - 4 = 9 eggs.\n**Step 2:** She makes 9 * 2 = $18.\n#### 18"
        assert [text[s:e] for s, e in plan.editable_steps(text)] == ["She sells 16 - 3 - 4 = 9 eggs.", "She makes 9 * 2 = $18."]


class TestWhatAnEditRecords:
    def test_span_diff_and_share_of_a_one_number_edit(self):
        chosen, rejected = SOLUTION, "She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 3 = $27.\n#### 27"
        offset = chosen.index("She makes")

        span = edit_checks.edit_span("She makes 9 * 2 = $18.", "She makes 9 * 3 = $27.", offset)
        diff = edit_checks.token_diff(chosen, rejected)

        assert rejected[span["start"] : span["end"]] == "3 = $27"
        assert [(d["op"], chosen[d["chosen_start"]:d["chosen_end"]], rejected[d["rejected_start"]:d["rejected_end"]])
                for d in diff] == [("replace", "2", "3"), ("replace", "18", "27"), ("replace", "18", "27")]
        assert edit_checks.changed_share("She makes 9 * 2 = $18.", "She makes 9 * 3 = $27.") == 0.2222  # 2 of 9 tokens

    @given(st.text(alphabet="ab 12+=.\n", max_size=40), st.text(alphabet="ab 12+=.\n", max_size=40))
    def test_diff_hunks_rebuild_the_rejected_text(self, chosen, rejected):
        """Applying the hunks to `chosen` gives `rejected` up to whitespace between tokens."""
        out, last = [], 0
        for d in edit_checks.token_diff(chosen, rejected):  # hunks are whole tokens: keep them apart with spaces
            out.append(chosen[last : d["chosen_start"]])
            out.append(" " + rejected[d["rejected_start"] : d["rejected_end"]] + " ")
            last = d["chosen_end"]
        out.append(chosen[last:])
        tokens = re.compile(r"\d+(?:[.,]\d+)*|\w+|[^\w\s]").findall
        assert tokens("".join(out)) == tokens(rejected)

    @pytest.mark.parametrize(
        ("output", "edit"),
        [("Step 2: She makes 9 * 3 = $27.", "She makes 9 * 3 = $27."),
         ("**Step 2:** She makes 9 * 3 = $27.\nMore text", "She makes 9 * 3 = $27."),
         ('\n"She makes 9 * 3 = $27."', "She makes 9 * 3 = $27."),
         ("", "")],
    )
    def test_parse_edit(self, output, edit):
        assert plan.parse_edit(output) == edit

    def test_template_leaves_only_numbers_and_operators_free(self):
        pattern = plan.edit_regex("She makes 9 * 2 = $18 (net).", "change_number", cfg=RiseConfig())

        assert re.fullmatch(pattern, "She makes 9 * 3 = $27 (net).")
        assert re.fullmatch(pattern, "She makes 9 / 2 = $4.5 (net).")
        assert not re.fullmatch(pattern, "She makes 9 * 3 = $27 (gross).")
        assert plan.edit_regex("She makes 9 * 2 = $18.", "change_related_words", cfg=RiseConfig()) == r"[^\n]+"
        assert plan.edit_regex("x", "change_number", cfg=RiseConfig(constrained="off")) is None


def _samples_and_prompts(*, correct: bool = True):
    prompts = _prompts(("p", SOLUTION, "18")).with_columns(question=pl.lit(QUESTION))
    samples = _verified([
        {"prompt_id": "p", "sample_index": 0, "correct": correct, "mean_logprob": -0.5, "completion": SOLUTION},
        {"prompt_id": "p", "sample_index": 1, "correct": False, "mean_logprob": -0.1,
         "completion": "She makes 9 * 3 = $27.\n#### 27"},
    ])
    return samples, prompts


def _editor(**kwargs) -> ScriptedEngine:
    """Edits as `gsm8k_edit_policy` does; continues an edited prefix by finishing with a wrong answer."""

    def continuation(request, index, rng):
        return "So she makes $27.\n#### 27"

    def unreachable(request, index, rng):
        raise AssertionError("only edits and continuations are asked for")

    return ScriptedEngine(routed(unreachable, unreachable, continuation=continuation, editor=gsm8k_edit_policy(**kwargs)))


class TestInject:
    def test_solutions_take_correct_samples_then_the_reference_when_allowed(self):
        samples, prompts = _samples_and_prompts(correct=False)

        assert plan.solutions(samples, prompts, cfg=RiseConfig()).height == 0
        (reference,) = plan.solutions(samples, prompts, cfg=RiseConfig(use_reference=True)).to_dicts()
        assert (reference["source"], reference["text"], reference["solution_id"]) == ("reference", SOLUTION, "p-reference")

    def test_llm_edits_are_continued_checked_and_recorded(self):
        samples, prompts = _samples_and_prompts()
        engine = _editor()

        edits = rise.inject(samples, prompts, engine=engine,
                            cfg=RiseConfig(edits_per_solution=3, max_changed_share=1.0), verify_cfg=VERIFY)

        assert edits.height == 3 and edits["keep"].all() and set(edits["editor"]) == {"llm"}
        assert edits["error_type"].n_unique() == 3 and engine.calls == 2  # one batch of edits, one of continuations
        for e in edits.iter_rows(named=True):
            start = SOLUTION.index(e["original_step"])
            assert e["rejected_text"].startswith(SOLUTION[:start] + e["edited_step"] + "\n")
            assert e["rejected_text"].endswith("#### 27") and e["rejected_answer"] == "27"
            span = e["edit_span"]
            assert start <= span["start"] < span["end"] <= start + len(e["edited_step"])

    def test_an_admitting_editor_falls_back_to_the_rules(self):
        samples, prompts = _samples_and_prompts()

        edits = rise.inject(samples, prompts, engine=_editor(p_bad=1.0, bad=("admit",)), cfg=RiseConfig(), verify_cfg=VERIFY)
        without = rise.inject(samples, prompts, engine=_editor(p_bad=1.0, bad=("admit",)),
                              cfg=RiseConfig(rules_fallback=False), verify_cfg=VERIFY)

        assert edits.select("editor", "keep", "drop_reason").rows() == [
            ("llm", False, edit_checks.ADMITS_ERROR), ("rules", True, None)]
        assert without["keep"].sum() == 0

    def test_edits_dropped_before_continuing_are_not_continued(self):
        samples, prompts = _samples_and_prompts()
        engine = _editor(p_bad=1.0, bad=("unchanged",))

        edits = rise.inject(samples, prompts, engine=engine, cfg=RiseConfig(rules_fallback=False), verify_cfg=VERIFY)

        assert edits["drop_reason"].to_list() == [edit_checks.UNCHANGED] and engine.calls == 1

    def test_editor_requests_carry_the_template_and_the_step(self):
        samples, prompts = _samples_and_prompts()
        seen = []

        class Recording(ScriptedEngine):
            def generate(self, requests):
                seen.extend(requests)
                return super().generate(requests)

        rise.inject(samples, prompts, engine=Recording(routed(None, None, editor=gsm8k_edit_policy(),
                                                               continuation=lambda *a: "#### 27")),
                    cfg=RiseConfig(error_types=("change_number",)), verify_cfg=VERIFY)

        edit, cont = seen
        k, step = asked_step(edit)
        assert step in SOLUTION and re.fullmatch(edit.sampling.regex, step)
        assert cont.continue_final and cont.messages[-1]["role"] == "assistant"
        assert cont.messages[-1]["content"].endswith("\n") and QUESTION not in cont.messages[-1]["content"]

    def test_rules_editor_needs_no_engine(self):
        samples, prompts = _samples_and_prompts()

        edits = rise.inject(samples, prompts, engine=None, cfg=RiseConfig(editor="rules"), verify_cfg=VERIFY)

        (edit,) = edits.to_dicts()
        assert edit["keep"] and edit["editor"] == "rules" and edit["error_type"] in ("change_number", "change_operator", "swap_terms")
        assert edit["rejected_answer"] != "18"


class TestPairs:
    def _edits(self):
        samples, prompts = _samples_and_prompts()
        return rise.inject(samples, prompts, engine=None, cfg=RiseConfig(editor="rules", edits_per_solution=3), verify_cfg=VERIFY)

    def test_rise_pairs_fit_the_pairs_table(self):
        pairs = rise_pairs.rise_pairs(self._edits())

        table = conform(pairs, PAIRS, where="rise pairs", fill_nullable=True)
        rows = table.to_pylist()
        assert rows and all(r["strategy"] == "rise" and r["margin"] == 1.0 for r in rows)
        for r in rows:
            assert r["chosen"][0]["content"] == SOLUTION and r["rejected_sample_id"].startswith(r["chosen_sample_id"])
            span = r["edit_span"]
            assert r["rejected"][0]["content"][span["start"] : span["end"]]  # points at the edited words

    def test_mix_caps_rise_pairs_by_ratio(self):
        pairs = rise_pairs.rise_pairs(self._edits())
        sampled = pairs.head(0).with_columns(strategy=pl.lit("x")).vstack(
            pairs.head(1).with_columns(strategy=pl.lit("verified_vs_incorrect"), pair_id=pl.lit("s")))

        capped = rise_pairs.mix_pairs(sampled, pairs, ratio=1.0)
        everything = rise_pairs.mix_pairs(sampled, pairs, ratio=None)

        kept = capped.filter(pl.col("strategy") == "rise")
        assert kept["keep"].sum() == 1 and set(kept.filter(~pl.col("keep"))["drop_reason"]) == {rise_pairs.OVER_RATIO}
        assert everything["keep"].sum() == 1 + pairs.height
        assert sorted(capped["curriculum_rank"]) == list(range(capped.height))
        first = capped.sort("curriculum_rank").row(0, named=True)
        assert first["strategy"] == "verified_vs_incorrect"  # hardest negatives last, whatever their margin


class TestConfig:
    def test_unknown_error_type_names_the_known_ones(self):
        with pytest.raises(ConfigError, match=r"rise\.error_types: unknown 'off_by_one'; known: change_number"):
            validate_config({"dataset": "d", "source": {"path": "x"}, "rise": {"error_types": ["off_by_one"]}})

    def test_catalogue_adds_error_types_used_in_the_prompt(self):
        cfg = RiseConfig(catalogue={"off_by_one": "Add one to the step's result."}, error_types=("off_by_one",))
        samples, prompts = _samples_and_prompts()

        plans = plan.plan_edits(plan.solutions(samples, prompts, cfg=cfg), cfg=cfg)

        assert [p.error_type for p in plans] == ["off_by_one"]
        prompt = plan.edit_prompt(QUESTION, SOLUTION, plans[0].steps, plans[0].step_index, plans[0].instruction)
        assert "Add one to the step's result." in prompt and "Final answer: 18" in prompt

    def test_bad_catalogue_entries_are_refused(self):
        with pytest.raises(ValueError, match="lower_snake_case"):
            RiseConfig(catalogue={"Off By One": "x"})
        with pytest.raises(ValueError, match="non-empty instruction"):
            RiseConfig(catalogue={"off_by_one": " "})


class TestNothingToEdit:
    def test_no_correct_solution_gives_no_edits_no_pairs_and_leaves_sampled_pairs_alone(self):
        from prefmill.tasks.stats import rise_stats

        samples, prompts = _samples_and_prompts(correct=False)
        sampled = pl.DataFrame({"pair_id": ["s"], "keep": [True], "strategy": ["verified_vs_incorrect"]})

        edits = rise.inject(samples, prompts, engine=_editor(), cfg=RiseConfig(), verify_cfg=VERIFY)
        pairs = rise_pairs.rise_pairs(edits)

        assert edits.height == 0 and pairs.height == 0
        assert rise_pairs.mix_pairs(sampled, pairs, ratio=1.0).equals(sampled)
        assert rise_stats(edits, sampled) == {
            "solutions": 0, "edits": 0, "kept": 0, "kept_share": None, "dropped": {}, "by_error_type": {},
            "by_editor": {}, "mean_changed_share": None, "pairs": 0, "over_ratio": 0,
        }
