"""Any OpenAI-compatible server (`vllm serve`, SGLang, a hosted API) through the official `openai` client.

The server does the batching; this engine only keeps up to `max_concurrency` requests in flight and
retries what a server can recover from (connection errors, timeouts, 429, 5xx) with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import openai

from prefmill.engines.base import Completion, GenRequest, GenResult, sample_seed

log = logging.getLogger(__name__)


def public_url(url: str) -> str:
    """`url` without user, password, query or fragment: safe for fingerprints, logs and reprs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme}://{netloc}{parts.path}".rstrip("/")


def is_retryable(exc: BaseException) -> bool:
    """What a server can recover from: no connection, a timeout, rate limiting (429), a 5xx."""
    if isinstance(exc, openai.APIConnectionError):  # APITimeoutError is a subclass
        return True
    return isinstance(exc, openai.APIStatusError) and (exc.status_code == 429 or exc.status_code >= 500)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


class OpenAIEngine:
    """Chat requests go to `chat.completions`, prefix requests to `completions` (raw continuation)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_concurrency: int = 16,
        max_retries: int = 4,
        timeout: float = 120.0,
        backoff: float = 0.5,
        http_client=None,
    ) -> None:
        if max_concurrency < 1 or max_retries < 0 or timeout <= 0 or backoff < 0:
            raise ValueError(
                "OpenAIEngine: need max_concurrency >= 1, max_retries >= 0, timeout > 0, backoff >= 0; got "
                f"{max_concurrency=}, {max_retries=}, {timeout=}, {backoff=}"
            )
        self.base_url = base_url
        self.model = model
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.timeout = timeout
        self.backoff = backoff
        self.http_client = http_client
        """Caller-owned `httpx.AsyncClient` (tests inject a MockTransport); never closed here."""
        # Local servers need no key but the client insists on one; "EMPTY" is vLLM's convention.
        self._api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "EMPTY")
        self._secrets = tuple(s for s in (self._api_key, urlsplit(base_url).password) if s and s != "EMPTY")
        self.fingerprint = f"openai:{model}@{public_url(base_url)}"
        self.calls = 0

    def __repr__(self) -> str:
        return f"OpenAIEngine(model={self.model!r}, base_url={public_url(self.base_url)!r})"

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """Results in request order; a request that failed after retries carries `error`, never raises."""
        self.calls += 1
        if not requests:
            return []
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._generate_all(requests))
        # Called from inside a running loop (a notebook, an async flow): that loop cannot be re-entered,
        # so the requests run on a fresh loop in a worker thread while this call blocks.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="openai-engine") as pool:
            return pool.submit(asyncio.run, self._generate_all(requests)).result()

    async def _generate_all(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        # A client per call: an httpx pool belongs to the event loop that opened it.
        client = openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=self._api_key,
            max_retries=0,  # retries are ours, so they are counted, logged and testable
            timeout=self.timeout,
            http_client=self.http_client,
        )
        limit = asyncio.Semaphore(self.max_concurrency)
        try:
            return list(await asyncio.gather(*(self._one(client, limit, r) for r in requests)))
        finally:
            if self.http_client is None:
                await client.close()

    async def _one(self, client: openai.AsyncOpenAI, limit: asyncio.Semaphore, request: GenRequest) -> GenResult:
        attempt = 0
        while True:
            try:
                async with limit:
                    return await self._call(client, request)
            except Exception as exc:  # an engine error is data: recorded on the result, never raised
                if not is_retryable(exc) or attempt == self.max_retries:
                    error = self._scrub(f"{type(exc).__name__}: {exc}")
                    log.warning("request %s failed after %d attempt(s): %s", request.request_id, attempt + 1, error)
                    return GenResult(request.request_id, error=error)
                delay = self.backoff * 2**attempt + random.uniform(0, self.backoff / 4)
                log.info(
                    "request %s: %s; retry %d in %.2fs", request.request_id, type(exc).__name__, attempt + 1, delay
                )
            attempt += 1
            await asyncio.sleep(delay)  # outside the semaphore: a waiting retry does not hold a slot

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def _call(self, client: openai.AsyncOpenAI, request: GenRequest) -> GenResult:
        s = request.sampling
        # vLLM and SGLang servers take guided decoding here; other servers need regex off.
        extra_body = {"structured_outputs": {"regex": s.regex}} if s.regex else {}
        if request.continue_final:
            # vLLM's chat API renders the last (assistant) message open-ended and returns only the
            # continuation; servers without these options continue from a fresh turn or refuse them.
            extra_body |= {"continue_final_message": True, "add_generation_prompt": False}
        # Unset options are left out, not sent as null: some hosted APIs refuse nulls.
        common = dict(
            model=self.model, n=s.n, temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens,
            seed=openai.omit if s.seed is None else sample_seed(s, 0), stop=list(s.stop) or openai.omit,
            extra_body=extra_body or None,
        )
        if request.prefix is not None:
            response = await client.completions.create(
                prompt=request.prefix, logprobs=1 if s.logprobs else openai.omit, **common
            )
            choices = [
                (c.index, c.text, c.finish_reason, self._completion_logprobs(c)) for c in response.choices
            ]
        else:
            response = await client.chat.completions.create(
                messages=list(request.messages), logprobs=True if s.logprobs else openai.omit, **common
            )
            choices = [
                (c.index, c.message.content or "", c.finish_reason, self._chat_logprobs(c)) for c in response.choices
            ]
        usage = response.usage
        total = usage.completion_tokens if usage is not None else 0
        completions = tuple(
            Completion(
                index=index,
                text=text,
                # The API counts tokens per response, not per choice: with n > 1 and no logprobs the
                # choices share the total evenly (an estimate; ask for logprobs for exact counts).
                num_tokens=len(logprobs) if logprobs is not None else round(total / max(len(choices), 1)),
                mean_logprob=_mean(logprobs) if logprobs is not None else None,
                finish_reason=finish or "stop",
            )
            for index, text, finish, logprobs in sorted(choices, key=lambda c: c[0])
        )
        return GenResult(request.request_id, completions, prompt_tokens=usage.prompt_tokens if usage else 0)

    @staticmethod
    def _chat_logprobs(choice) -> list[float] | None:
        content = choice.logprobs.content if choice.logprobs is not None else None
        return None if content is None else [t.logprob for t in content]

    @staticmethod
    def _completion_logprobs(choice) -> list[float] | None:
        values = choice.logprobs.token_logprobs if choice.logprobs is not None else None
        return None if values is None else [v for v in values if v is not None]
