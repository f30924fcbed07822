"""The `runner` section of a recipe: where the engine calls run. It says how, never what: it is left
out of the version's content hash, so `runner: ray` and `runner: local` make the same dataset."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


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
    batch_timeout: float = Field(3600, gt=0, le=86_400)
    """Seconds a batch may take on a replica; past it the replica is dropped (a lost node whose actor
    cannot be placed again would otherwise block the run) and its batches go to the others."""
    start_timeout: float = Field(900, gt=0, le=86_400)
    """Seconds the replicas may take to start (load their model); Ray waits forever for resources a
    cluster does not have, so past this the run stops with one error instead of hanging."""

    @field_validator("address")
    @classmethod
    def _no_credentials(cls, value: str | None) -> str | None:
        """A recipe is written to manifests and Prefect's database: an address must not carry a secret."""
        if value is None:
            return value
        parts = urlsplit(value if "://" in value else f"ray://{value}")
        if "@" in parts.netloc or parts.query or parts.fragment:
            raise ValueError("must be host:port or ray://host:port, without user@, ?query or #fragment: "
                             "recipes are written to manifests; put credentials in the environment")
        return value

    @model_validator(mode="after")
    def _ray_settings_need_ray(self) -> RunnerConfig:
        """`replicas: 8` without `kind: ray` would run one local engine without a word."""
        if self.kind == "local":
            set_here = sorted(name for name, field in type(self).model_fields.items()
                              if name != "kind" and getattr(self, name) != field.default)
            if set_here:
                raise ValueError(f"{', '.join(set_here)} apply to kind: ray only; set runner.kind: ray or drop them")
        return self
