"""tasks/decontaminate.py: n-gram overlap with evaluation questions."""

from __future__ import annotations

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from prefmill.config import DecontaminationConfig
from prefmill.tasks.sampling.decontaminate import decontaminate, eval_index, ngrams

EVAL = ["Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning."]


def _prompts(*questions: str) -> pl.DataFrame:
    return pl.DataFrame({"prompt_id": [f"p{i}" for i in range(len(questions))], "question": list(questions)})


class TestNgrams:
    def test_normalises_case_and_punctuation(self):
        assert ngrams("A b, C!", 2) == {("a", "b"), ("b", "c")}

    def test_short_text_is_one_gram(self):
        assert ngrams("Two words", 5) == {("two", "words")}
        assert ngrams("!!", 3) == set()

    @given(st.lists(st.sampled_from(["alpha", "beta", "gamma", "delta"]), min_size=3, max_size=30), st.integers(1, 5))
    def test_every_gram_has_n_words_and_comes_from_the_text(self, words, n):
        text = " ".join(words)
        grams = ngrams(text, n)
        assert all(len(g) == min(n, len(words)) for g in grams)
        assert all(" ".join(g) in text for g in grams)


class TestDecontaminate:
    def test_drops_overlapping_prompt_with_reason(self):
        index = eval_index(EVAL, n=5)
        prompts = _prompts(
            "Her ducks lay 16 eggs sometimes in spring.",  # shares 4 words in a row, not 5
            "Janet's ducks lay 16 eggs per day! How many in a week?",
            "A completely different question about trains.",
        )
        out = decontaminate(prompts, index, cfg=DecontaminationConfig(ngram=5))
        assert out.select("keep", "drop_reason").rows() == [(True, None), (False, "contaminated"), (True, None)]
        assert out["overlap"][1] > 0 and out["overlap"][2] == 0

    def test_min_overlap_threshold(self):
        index = eval_index(EVAL, n=3)
        prompts = _prompts("She eats three for breakfast and then sleeps all afternoon long in the sun")
        strict = decontaminate(prompts, index, cfg=DecontaminationConfig(ngram=3))
        lenient = decontaminate(prompts, index, cfg=DecontaminationConfig(ngram=3, min_overlap=0.5))
        assert (strict["keep"][0], lenient["keep"][0]) == (False, True)
