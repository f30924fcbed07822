"""OpenAIEngine against in-process fake servers (httpx.MockTransport): mapping, retries, concurrency, secrets."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest

from prefmill.engines.base import Engine, GenRequest, Sampling
from prefmill.engines.openai import OpenAIEngine, public_url

SECRET = "sk-secret-123"


def _engine(handler, **kwargs) -> OpenAIEngine:
    kwargs = {"api_key": "test-key", "backoff": 0.0} | kwargs
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return OpenAIEngine("http://fake.local/v1", "fake-model", http_client=client, **kwargs)


def _chat(request_id: str, content: str = "hi", **sampling) -> GenRequest:
    return GenRequest(request_id, messages=({"role": "user", "content": content},), sampling=Sampling(**sampling))


def _chat_body(texts: list[str], logprobs: list[list[float]] | None = None, order=None, finish="stop") -> dict:
    choices = []
    for i in order if order is not None else range(len(texts)):
        choice = {"index": i, "message": {"role": "assistant", "content": texts[i]}, "finish_reason": finish}
        if logprobs is not None:
            choice["logprobs"] = {
                "content": [{"token": "t", "logprob": lp, "bytes": None, "top_logprobs": []} for lp in logprobs[i]]
            }
        choices.append(choice)
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "fake-model", "choices": choices,
        "usage": {"prompt_tokens": 7, "completion_tokens": 10, "total_tokens": 17},
    }


def _echo(request: httpx.Request) -> httpx.Response:
    """Answers a chat request with its own user message, so tests can match results to requests."""
    content = json.loads(request.content)["messages"][-1]["content"]
    return httpx.Response(200, json=_chat_body([f"re: {content}"], [[-1.0]]))


def test_chat_request_maps_choices_in_index_order_with_mean_logprob():
    seen = []

    def handler(request):
        seen.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200, json=_chat_body(["a", "b c"], [[-1.0, -2.0, -3.0], [-0.5]], order=[1, 0]))

    engine = _engine(handler)
    request = _chat("r1", n=2, temperature=0.7, top_p=0.9, max_tokens=32, seed=11, stop=("####",))

    [result] = engine.generate([request])

    path, body = seen[0]
    assert path == "/v1/chat/completions"
    assert body == {
        "model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "n": 2, "temperature": 0.7,
        "top_p": 0.9, "max_tokens": 32, "seed": 11, "stop": ["####"], "logprobs": True,
    }
    assert result.error is None and result.request_id == "r1" and result.prompt_tokens == 7
    assert [(c.index, c.text, c.num_tokens, c.finish_reason) for c in result.completions] == [
        (0, "a", 3, "stop"), (1, "b c", 1, "stop"),
    ]
    assert [c.mean_logprob for c in result.completions] == [-2.0, -0.5]
    assert engine.calls == 1 and isinstance(engine, Engine)


def test_without_logprobs_nothing_is_asked_and_mean_logprob_is_none():
    seen = []

    def handler(request):
        seen.append(json.loads(request.content))
        return httpx.Response(200, json=_chat_body(["x"], logprobs=None, finish="length"))

    [result] = _engine(handler).generate([_chat("r1", logprobs=False)])

    assert "logprobs" not in seen[0] and "seed" not in seen[0] and "stop" not in seen[0]
    [c] = result.completions
    assert (c.num_tokens, c.mean_logprob, c.finish_reason) == (10, None, "length")  # count from usage


def test_prefix_request_goes_to_completions_with_raw_prompt():
    seen = []

    def handler(request):
        seen.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200, json={
            "id": "cmpl-1", "object": "text_completion", "created": 0, "model": "fake-model",
            "choices": [{"index": 0, "text": " 4", "finish_reason": "length", "logprobs": {
                "tokens": [" ", "4"], "token_logprobs": [-0.2, -0.6], "text_offset": [0, 1], "top_logprobs": None,
            }}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        })

    request = GenRequest("p1", prefix="2 + 2 =", sampling=Sampling(max_tokens=2, seed=3))
    [result] = _engine(handler).generate([request])

    path, body = seen[0]
    assert path == "/v1/completions" and body["prompt"] == "2 + 2 =" and body["logprobs"] == 1
    assert "messages" not in body and body["seed"] == 3
    [c] = result.completions
    assert (c.text, c.num_tokens, c.finish_reason) == (" 4", 2, "length")
    assert c.mean_logprob == pytest.approx(-0.4)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_error_then_success_is_retried(status):
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(status, json={"error": {"message": "busy"}}) if len(calls) == 1 else _echo(request)

    [result] = _engine(handler).generate([_chat("r1")])

    assert len(calls) == 2
    assert result.error is None and result.completions[0].text == "re: hi"


def test_bad_request_is_not_retried_and_becomes_an_error_result():
    calls = []

    def handler(request):
        calls.append(1)
        return httpx.Response(400, json={"error": {"message": "max_tokens is too large"}})

    [result] = _engine(handler).generate([_chat("r1")])

    assert len(calls) == 1
    assert result.completions == () and result.error.startswith("BadRequestError: ")
    assert "max_tokens is too large" in result.error


@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ReadTimeout])
def test_request_failing_beyond_max_retries_is_an_error_while_others_succeed(failure):
    attempts = {}

    def handler(request):
        content = json.loads(request.content)["messages"][-1]["content"]
        attempts[content] = attempts.get(content, 0) + 1
        if content == "bad":
            raise failure("no route to the server", request=request)
        return _echo(request)

    requests = [_chat("r0", "good 0"), _chat("r1", "bad"), _chat("r2", "good 2")]
    results = _engine(handler, max_retries=2).generate(requests)

    assert attempts == {"good 0": 1, "bad": 3, "good 2": 1}  # 1 try + 2 retries
    assert [r.request_id for r in results] == ["r0", "r1", "r2"]
    assert results[1].completions == ()
    expected = "APIConnectionError: " if failure is httpx.ConnectError else "APITimeoutError: "
    assert results[1].error.startswith(expected)
    assert [results[i].completions[0].text for i in (0, 2)] == ["re: good 0", "re: good 2"]


def test_in_flight_requests_never_exceed_max_concurrency():
    in_flight = peak = 0

    async def handler(request):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return _echo(request)

    results = _engine(handler, max_concurrency=3).generate([_chat(f"r{i}", str(i)) for i in range(20)])

    assert peak == 3
    assert all(r.error is None for r in results)


def test_results_follow_request_order_when_responses_finish_out_of_order():
    finished = []

    async def handler(request):
        i = int(json.loads(request.content)["messages"][-1]["content"])
        await asyncio.sleep(0.005 * (8 - i))  # the first request answers last
        finished.append(i)
        return _echo(request)

    results = _engine(handler).generate([_chat(f"r{i}", str(i)) for i in range(8)])

    assert finished == list(range(7, -1, -1))
    assert [r.request_id for r in results] == [f"r{i}" for i in range(8)]
    assert [r.completions[0].text for r in results] == [f"re: {i}" for i in range(8)]


def test_generate_works_inside_a_running_event_loop():
    engine = _engine(_echo)

    async def caller():  # e.g. a notebook cell or an async flow calling the sync API
        return engine.generate([_chat("r1", "from a loop")])

    [result] = asyncio.run(caller())

    assert result.completions[0].text == "re: from a loop"
    assert engine.generate([]) == [] and engine.calls == 2


@pytest.mark.parametrize("message", ["invalid api key", f"Incorrect API key provided: {SECRET}"])
def test_api_key_never_leaks_into_errors_repr_fingerprint_or_logs(caplog, message):
    """Whether the server's 401 body echoes nothing or (as some servers do) the key itself."""
    auth = []

    def handler(request):
        auth.append(request.headers.get("authorization"))
        return httpx.Response(401, json={"error": {"message": message, "type": "invalid_request_error"}})

    caplog.set_level(logging.DEBUG)
    engine = _engine(handler, api_key=SECRET)

    [result] = engine.generate([_chat("r1")])

    assert auth == [f"Bearer {SECRET}"]  # the key was used, once: a 401 is not retried
    assert result.error.startswith("AuthenticationError: ")
    for text in (result.error, repr(engine), str(engine), engine.fingerprint, caplog.text):
        assert SECRET not in text
    assert "AuthenticationError" in caplog.text


def test_fingerprint_drops_credentials_and_query_from_the_url():
    engine = OpenAIEngine("https://user:pw-123@api.example.com:8443/v1/?token=abc#x", "m", api_key=SECRET)

    assert engine.fingerprint == "openai:m@https://api.example.com:8443/v1"
    assert "pw-123" not in repr(engine) and "token" not in repr(engine) and SECRET not in repr(engine)
    assert public_url("http://[::1]:8000/v1") == "http://[::1]:8000/v1"
