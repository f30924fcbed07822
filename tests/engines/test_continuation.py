"""Continuation requests (`continue_final`): validation, vLLM rendering with the real tokenizer, the
OpenAI request body, and what a scripted policy sees."""

from __future__ import annotations

import json

import httpx
import pytest

from prefmill.engines.base import GenRequest, Sampling
from prefmill.engines.openai import OpenAIEngine
from prefmill.engines.scripted import ScriptedEngine, last_user_text, partial_answer
from prefmill.engines.vllm import VLLMEngine, render_chat
from prefmill.models import default_model_dir

QUESTION = {"role": "user", "content": "Natalia sold 48 clips in April and half as many in May. How many in all?"}
PARTIAL = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"


def _continuation(request_id: str = "c|1", partial: str = PARTIAL, **sampling) -> GenRequest:
    return GenRequest(
        request_id,
        messages=(QUESTION, {"role": "assistant", "content": partial}),
        sampling=Sampling(**sampling),
        continue_final=True,
    )


class TestValidation:
    def test_default_is_a_fresh_turn(self):
        assert GenRequest("r", messages=(QUESTION,)).continue_final is False

    def test_needs_messages_not_a_prefix(self):
        with pytest.raises(ValueError, match="request 'p1': continue_final needs `messages`"):
            GenRequest("p1", prefix="raw text", continue_final=True)

    def test_last_message_must_be_the_assistant(self):
        with pytest.raises(ValueError, match="request 'u1': continue_final needs the last message to be the partial "
                                             "assistant turn; got last role 'user'"):
            GenRequest("u1", messages=(QUESTION,), continue_final=True)
        with pytest.raises(ValueError, match="request 'e1': .*got last role None"):
            GenRequest("e1", messages=(), continue_final=True)

    def test_partial_assistant_turn_is_accepted(self):
        assert _continuation().messages[-1] == {"role": "assistant", "content": PARTIAL}


@pytest.fixture(scope="module")
def tokenizer():
    folder = default_model_dir()
    if not (folder / "tokenizer_config.json").is_file():
        pytest.skip(f"the default model is not prepared at {folder} (run `prefmill` setup once)")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


class TestVLLMRender:
    def test_continuation_ends_with_the_partial_text_and_no_end_of_turn(self, tokenizer):
        rendered = render_chat(tokenizer, _continuation())

        assert rendered.endswith("<|im_start|>assistant\n" + PARTIAL)
        assert rendered.count("<|im_end|>") == 2  # the default system turn and the user turn, not the partial one
        assert rendered.rindex("<|im_end|>") < rendered.rindex(PARTIAL)

    def test_partial_without_a_trailing_newline_is_kept_as_is(self, tokenizer):
        rendered = render_chat(tokenizer, _continuation(partial="Natalia sold 48/2 ="))
        assert rendered.endswith("<|im_start|>assistant\nNatalia sold 48/2 =")

    def test_fresh_turn_ends_with_the_generation_prompt(self, tokenizer):
        rendered = render_chat(tokenizer, GenRequest("r", messages=(QUESTION,)))
        assert rendered.endswith(QUESTION["content"] + "<|im_end|>\n<|im_start|>assistant\n")

    def test_engine_render_uses_it_without_loading_vllm(self, tokenizer):
        class _LLM:
            def get_tokenizer(self):
                return tokenizer

        engine = VLLMEngine.__new__(VLLMEngine)  # no model load, no vLLM import
        engine._llm = _LLM()
        assert engine.render(_continuation()) == render_chat(tokenizer, _continuation())
        assert engine.render(GenRequest("p", prefix="raw")) == "raw"


def _chat_reply(text: str) -> dict:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "fake-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42},
    }


def _recording_engine(seen: list) -> OpenAIEngine:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200, json=_chat_reply("Natalia sold 48+24 = <<48+24=72>>72.\n#### 72"))

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return OpenAIEngine("http://fake.local/v1", "fake-model", api_key="k", backoff=0.0, http_client=client)


class TestOpenAIBody:
    def test_continuation_asks_the_server_to_continue_the_final_message(self):
        seen: list = []

        [result] = _recording_engine(seen).generate([_continuation(n=1, seed=3, logprobs=False)])

        path, body = seen[0]
        assert path == "/v1/chat/completions"
        assert body["messages"] == [QUESTION, {"role": "assistant", "content": PARTIAL}]
        assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
        assert "structured_outputs" not in body
        assert result.error is None and result.completions[0].text.endswith("#### 72")

    def test_merged_with_guided_decoding(self):
        seen: list = []

        _recording_engine(seen).generate([_continuation(regex=r"[^\n]*\n#### \d+", logprobs=False)])

        body = seen[0][1]
        assert body["structured_outputs"] == {"regex": r"[^\n]*\n#### \d+"}
        assert (body["continue_final_message"], body["add_generation_prompt"]) == (True, False)

    def test_fresh_turn_sends_neither_option(self):
        seen: list = []

        _recording_engine(seen).generate(
            [GenRequest("r", messages=(QUESTION,), sampling=Sampling(regex="x", logprobs=False))]
        )

        body = seen[0][1]
        assert body["structured_outputs"] == {"regex": "x"}
        assert "continue_final_message" not in body and "add_generation_prompt" not in body


class TestScripted:
    def test_policy_sees_the_request_unchanged_and_reads_the_partial_turn(self):
        seen = []

        def policy(request, index, rng):
            seen.append(request)
            return f"{last_user_text(request)[:7]} | {partial_answer(request)!r}"

        request = _continuation(n=2, seed=1)
        [result] = ScriptedEngine(policy).generate([request])

        assert seen == [request, request]
        assert result.completions[0].text == f"Natalia | {PARTIAL!r}"

    def test_no_partial_answer_for_fresh_turns_and_raw_prefixes(self):
        assert partial_answer(GenRequest("r", messages=(QUESTION,))) is None
        assert partial_answer(GenRequest("r", messages=(QUESTION, {"role": "assistant", "content": "x"}))) is None
        assert partial_answer(GenRequest("r", prefix="raw")) is None
        assert partial_answer(_continuation(partial="")) == ""
