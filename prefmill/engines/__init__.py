"""Engines: where generation happens. Stages only see the `Engine` protocol."""

from __future__ import annotations

from collections.abc import Mapping

from prefmill.config import EngineConfig
from prefmill.engines.base import Completion, Engine, GenRequest, GenResult, Sampling

__all__ = ["Completion", "Engine", "GenRequest", "GenResult", "Sampling", "engine_for", "register_engine"]

# One live engine per configuration in this process: loading a model costs 15-30 s, so flows,
# reruns and tests share it.
_ENGINES: dict[str, Engine] = {}


def _key(cfg: EngineConfig) -> str:
    return cfg.model_dump_json()


def register_engine(cfg: EngineConfig, engine: Engine) -> None:
    """Make `engine_for(cfg)` return `engine` (tests use this to inject a scripted engine)."""
    _ENGINES[_key(cfg)] = engine


def engine_for(cfg: EngineConfig, *, references: Mapping[str, str] | None = None) -> Engine:
    """The engine a recipe asks for; `references` (question -> solution) drive a scripted engine."""
    if (engine := _ENGINES.get(_key(cfg))) is not None:
        return engine
    if cfg.kind == "scripted":
        from prefmill.engines.scripted import ScriptedEngine, gsm8k_policy

        return ScriptedEngine(gsm8k_policy(references or {}, p_error=cfg.p_error), name=f"gsm8k-p{cfg.p_error}")
    from prefmill.engines.vllm import VLLMEngine

    engine = VLLMEngine(cfg.model, revision=cfg.revision, dtype=cfg.dtype, max_model_len=cfg.max_model_len, seed=cfg.seed)
    _ENGINES[_key(cfg)] = engine
    return engine
