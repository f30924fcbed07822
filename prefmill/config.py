"""Recipes: YAML files validated by pydantic, one model per stage, unknown keys refused."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from prefmill.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Strict):
    """Where prompts come from."""

    path: str
    """A JSONL or Parquet file, a folder of them, or a Hub dataset id (read through `datasets`)."""
    subset: str | None = None
    """Hub dataset configuration name, e.g. `main` for `openai/gsm8k`."""
    split: str = "train"
    """Split to read from a folder or Hub dataset; ignored for a single file."""
    question_field: str = "question"
    answer_field: str | None = "answer"
    """Reference: a worked solution ending `#### <answer>` (GSM8K) or a bare answer; null if none."""
    offset: int = Field(0, ge=0)
    limit: int | None = Field(None, ge=1)
    """Rows to read after `offset`; null reads all."""


class EngineConfig(_Strict):
    kind: Literal["vllm", "scripted"] = "vllm"
    """`vllm` (offline, in process) or `scripted` (deterministic simulator, tests and benchmarks)."""
    model: str = "default"
    """`default` (the packaged SmolLM2-135M-Instruct), a local folder or a Hub model id."""
    revision: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """`auto` picks bfloat16 where the hardware has fast bf16 kernels, else float32."""
    max_model_len: int = Field(2048, ge=128)
    seed: int = 0
    p_error: float = Field(0.3, ge=0, le=1)
    """Scripted engine only: probability that a sample gets one step wrong."""


class GenerateConfig(_Strict):
    n: int = Field(4, ge=1, le=256)
    """Samples per prompt (Self-Consistency uses 40; 4-16 is typical for pair building)."""
    temperature: float = Field(0.8, ge=0, le=2)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(256, ge=1)
    seed: int = 1234
    """Base seed; each prompt's seed derives from it and the prompt id, and is stored per sample."""
    stop: tuple[str, ...] = ()
    system_prompt: str | None = None
    prompt_template: str = "{question}\n\nSolve the problem step by step. End with a line '#### <answer>'."
    """User message; must contain `{question}`."""
    chunk_size: int = Field(64, ge=1)
    """Prompts per checkpointed engine call; a crashed run resumes after the last finished chunk."""
    max_failed_share: float = Field(0.0, ge=0, le=1)
    """Share of requests allowed to fail in the engine before the stage fails."""

    @field_validator("prompt_template")
    @classmethod
    def _has_question(cls, value: str) -> str:
        if "{question}" not in value:
            raise ValueError(f"must contain '{{question}}', got {value!r}")
        return value


class VerifyConfig(_Strict):
    timeout_seconds: int = Field(5, ge=1)
    """Per-answer limit for math-verify's parse and compare (main thread only)."""


class PairsConfig(_Strict):
    reference_as_chosen: bool = True
    """With no correct sample, use the reference solution as chosen (`chosen_source="reference"`)."""
    rejected: Literal["most_confident", "least_confident"] = "most_confident"
    """Which incorrect sample to reject: highest mean logprob (a hard negative) or lowest."""


class RunConfig(_Strict):
    dataset: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Dataset name in the store; versions go to `<store>/<dataset>/vNNNN/`."""
    source: SourceConfig
    engine: EngineConfig = EngineConfig()
    generate: GenerateConfig = GenerateConfig()
    verify: VerifyConfig = VerifyConfig()
    pairs: PairsConfig = PairsConfig()


def config_hash(model: BaseModel) -> str:
    return hashlib.sha256(json.dumps(model.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


def _set_dotted(data: dict[str, Any], dotted: str, value: Any, *, origin: str) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{origin}: cannot set {dotted!r}: {key!r} is not a section")
        node = child
    node[keys[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`key.sub=value` pairs; values parse as YAML scalars (`8`, `true`, `null`, `[a, b]`)."""
    out = json.loads(json.dumps(data))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE", hint="e.g. --set generate.n=8")
        _set_dotted(out, key.strip(), yaml.safe_load(raw), origin=f"--set {item!r}")
    return out


def _format_errors(origin: str, exc: ValidationError) -> str:
    lines = [f"{origin}: invalid recipe"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        got = "" if err["type"] in ("missing", "value_error") else f" (got {err['input']!r})"
        lines.append(f"  {where}: {err['msg']}{got}")
    return "\n".join(lines)


def _resolve_source_path(data: dict[str, Any], base: Path) -> None:
    source = data.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("path"), str):
        return
    path = Path(source["path"]).expanduser()
    if not path.is_absolute() and (base / path).exists():
        source["path"] = str((base / path).resolve())


def validate_config(data: Any, *, origin: str = "config") -> RunConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: expected a mapping of sections, got {type(data).__name__}")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(origin, exc), hint="see configs/demo.yaml for every key") from None


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read, override and validate a recipe; a relative `source.path` is taken from the recipe's folder."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such recipe file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if isinstance(data, dict):
        data = apply_overrides(data, overrides or [])
        _resolve_source_path(data, path.parent)
    return validate_config(data, origin=str(path))
