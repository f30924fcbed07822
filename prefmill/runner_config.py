"""The `runner` section of a recipe: where the engine calls run. It says how, never what: it is left
out of the version's content hash, so `runner: ray` and `runner: local` make the same dataset."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


class RunnerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["local", "ray"] = "local"
    """`local`: the engine lives in this process. `ray`: a pool of engine replicas on a Ray cluster,
    fed request batches by every generating stage (sampling, judging, RISE edits, rollouts)."""
    address: str | None = None
    """Ray only: the cluster (`auto`, `127.0.0.1:6379`, `ray://head:10001`); null: $RAY_ADDRESS, else a
    Ray instance started on this machine for the run."""
    replicas: int = Field(1, ge=1, le=1024)
    """Engine replicas, each a Ray actor holding one engine (one per GPU on a GPU cluster)."""
    num_gpus: float = Field(0, ge=0, le=64)
    """GPUs per replica (1 for a vLLM replica on a GPU node; 0 on CPU)."""
    num_cpus: float = Field(1, gt=0, le=256)
    """CPUs per replica."""
    batch_size: int = Field(64, ge=1, le=100_000)
    """Requests per batch sent to a replica; vLLM batches them again inside."""
    max_concurrent_batches: int = Field(2, ge=1, le=64)
    """Batches in flight per replica, so a replica never waits for the driver between batches."""
    object_store_memory_mb: int | None = Field(None, ge=64)
    """Local Ray instance only: its object store (default: Ray's own, 30% of memory)."""

    @field_validator("address")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        """A recipe is written to Prefect's database: an address must not carry a secret."""
        if value is not None and "://" in value and urlsplit(value).password:
            raise ValueError("must not hold a password (user:password@): put credentials in the environment")
        return value
