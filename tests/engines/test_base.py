"""engines/base.py: request validation and generate_with_splitting."""

from __future__ import annotations

import pytest

from prefmill.engines.base import Completion, GenRequest, GenResult, generate_with_splitting


def _requests(n: int) -> list[GenRequest]:
    return [GenRequest(request_id=f"r{i}", prefix=f"text {i}") for i in range(n)]


def _runner(bad: set[str], calls: list[list[str]]):
    def run_batch(batch):
        ids = [r.request_id for r in batch]
        calls.append(ids)
        if bad & set(ids):
            raise RuntimeError(f"batch with {sorted(bad & set(ids))[0]} crashed")
        return [GenResult(i, (Completion(0, f"out {i}", 2, -0.1, "stop"),)) for i in ids]

    return run_batch


class TestGenRequest:
    def test_needs_exactly_one_of_messages_or_prefix(self):
        with pytest.raises(ValueError, match="request 'x': give exactly one of `messages` or `prefix`"):
            GenRequest(request_id="x")
        with pytest.raises(ValueError, match="exactly one"):
            GenRequest(request_id="x", messages=({"role": "user", "content": "hi"},), prefix="hi")

    def test_default_sampling(self):
        s = GenRequest(request_id="x", prefix="p").sampling
        assert (s.n, s.temperature, s.top_p, s.max_tokens, s.seed, s.stop, s.logprobs) == (1, 0.8, 0.95, 256, None, (), True)


class TestGenerateWithSplitting:
    def test_healthy_batch_is_one_call(self):
        calls: list[list[str]] = []
        out = generate_with_splitting(_requests(5), _runner(set(), calls))
        assert [r.request_id for r in out] == ["r0", "r1", "r2", "r3", "r4"]
        assert all(r.error is None for r in out)
        assert calls == [["r0", "r1", "r2", "r3", "r4"]]

    def test_only_the_bad_request_fails_and_order_is_kept(self):
        calls: list[list[str]] = []

        out = generate_with_splitting(_requests(7), _runner({"r4"}, calls))

        assert [r.request_id for r in out] == [f"r{i}" for i in range(7)]
        assert [r.error for r in out] == [None] * 4 + ["RuntimeError: batch with r4 crashed"] + [None] * 2
        assert out[4].completions == ()
        assert [r.completions[0].text for i, r in enumerate(out) if i != 4] == [f"out r{i}" for i in (0, 1, 2, 3, 5, 6)]
        assert ["r4"] in calls  # the bad request was retried on its own before being given up

    def test_two_bad_requests(self):
        out = generate_with_splitting(_requests(8), _runner({"r0", "r7"}, []))
        assert [r.request_id for r in out if r.error] == ["r0", "r7"]
        assert len(out) == 8

    def test_single_failing_request(self):
        out = generate_with_splitting(_requests(1), _runner({"r0"}, []))
        assert out == [GenResult(request_id="r0", error="RuntimeError: batch with r0 crashed")]

    def test_non_retryable_error_is_raised_at_once(self):
        calls: list[list[str]] = []
        with pytest.raises(RuntimeError, match="crashed"):
            generate_with_splitting(_requests(4), _runner({"r2"}, calls), is_retryable=lambda exc: False)
        assert calls == [["r0", "r1", "r2", "r3"]]

    def test_no_requests_no_call(self):
        calls: list[list[str]] = []
        assert generate_with_splitting([], _runner(set(), calls)) == []
        assert calls == []
