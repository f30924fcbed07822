"""The `engine` section of a recipe (also `judge.engine`, `rise.engine`): which model, where it runs."""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


class EngineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["vllm", "openai", "scripted"] = "vllm"
    """`vllm` (offline, in process), `openai` (any OpenAI-compatible server) or `scripted` (tests)."""
    model: str = "default"
    """`default` (the packaged SmolLM2-135M-Instruct), a local folder or a Hub model id."""
    revision: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """`auto` picks bfloat16 where the hardware has fast bf16 kernels, else float32."""
    max_model_len: int = Field(2048, ge=128)
    seed: int = 0
    p_error: float = Field(0.3, ge=0, le=1)
    """Scripted engine only: probability that a sample gets one step wrong."""
    latency: float = Field(0.0, ge=0, le=60)
    """Scripted engine only: seconds each `generate` call takes, as a model would (tests of scheduling)."""
    latency_per_request: float = Field(0.0, ge=0, le=10)
    """Scripted engine only: seconds added per request of a call, as a batch's time grows with its size
    (bench.ray_scale: replicas overlap such calls)."""
    base_url: str | None = None
    """OpenAI engine: the server's /v1 URL, e.g. http://127.0.0.1:8000/v1."""
    api_key_env: str = "OPENAI_API_KEY"
    """OpenAI engine: name of the environment variable holding the key (the key never enters a recipe)."""
    max_concurrency: int = Field(16, ge=1)
    """OpenAI engine: requests in flight at once."""

    @field_validator("base_url")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        """A recipe is written to manifests and Prefect's database: a URL must not carry a secret."""
        if value is None:
            return value
        parts = urlsplit(value)
        secret = {"key", "api_key", "apikey", "token", "access_token", "password", "secret"}
        if parts.username or parts.password or any(k.lower() in secret for k, _ in parse_qsl(parts.query)):
            raise ValueError(
                "must not hold credentials (user:password@ or a key/token in the query): recipes are written "
                "to manifests and Prefect's database; put the key in the environment variable named by "
                "engine.api_key_env"
            )
        return value
