"""Engines: where generation happens. Stages only see the `Engine` protocol."""

from __future__ import annotations

from collections.abc import Mapping

from prefmill.config import EngineConfig
from prefmill.engines.base import Completion, Engine, GenRequest, GenResult, Sampling
from prefmill.errors import ConfigError
from prefmill.runner_config import RunnerConfig

__all__ = ["Completion", "Engine", "GenRequest", "GenResult", "Sampling", "engine_for", "register_engine"]

# One live engine per configuration in this process: loading a model costs 15-30 s, so flows,
# reruns and tests share it.
_ENGINES: dict[str, Engine] = {}


def _key(cfg: EngineConfig) -> str:
    return cfg.model_dump_json()


def register_engine(cfg: EngineConfig, engine: Engine) -> None:
    """Make `engine_for(cfg)` return `engine` (tests use this to inject a scripted engine)."""
    _ENGINES[_key(cfg)] = engine


def engine_for(
    cfg: EngineConfig, *, references: Mapping[str, str] | None = None, runner: RunnerConfig | None = None
) -> Engine:
    """The engine a recipe asks for; `references` (question -> solution) drive a scripted engine.
    `runner.kind: ray`: a pool of replicas of that engine on a Ray cluster, kept for the process."""
    if runner is not None and runner.kind == "ray":
        return _ray_pool(cfg, runner, references or {})
    if (engine := _ENGINES.get(_key(cfg))) is not None:
        return engine
    if cfg.kind == "scripted":
        from prefmill.engines.scripted import ScriptedEngine, gsm8k_judge_policy, gsm8k_policy, routed
        from prefmill.engines.scripted_chains import gsm8k_chain_policy
        from prefmill.engines.scripted_edits import gsm8k_edit_policy

        refs = references or {}
        policy = routed(
            gsm8k_policy(refs, p_error=cfg.p_error),
            gsm8k_judge_policy(refs, p_noise=cfg.p_error / 2),
            continuation=gsm8k_chain_policy(refs, p_error=cfg.p_error),
            editor=gsm8k_edit_policy(p_bad=cfg.p_error / 2),
        )
        return ScriptedEngine(policy, name=f"gsm8k-p{cfg.p_error}", latency=cfg.latency,
                              latency_per_request=cfg.latency_per_request)
    if cfg.kind == "openai":
        import os

        from prefmill.engines.openai import OpenAIEngine

        if not cfg.base_url:
            raise ConfigError("engine.base_url is required when engine.kind is openai", hint="e.g. http://127.0.0.1:8000/v1")
        engine = OpenAIEngine(
            cfg.base_url, cfg.model, api_key=os.environ.get(cfg.api_key_env), max_concurrency=cfg.max_concurrency
        )
        _ENGINES[_key(cfg)] = engine
        return engine
    from prefmill.engines.vllm import VLLMEngine

    engine = VLLMEngine(cfg.model, revision=cfg.revision, dtype=cfg.dtype, max_model_len=cfg.max_model_len, seed=cfg.seed)
    _ENGINES[_key(cfg)] = engine
    return engine


def _ray_pool(cfg: EngineConfig, runner: RunnerConfig, references: Mapping[str, str]) -> Engine:
    """One pool per (engine, runner) in this process, and for a scripted engine per reference set too
    (its policy answers from them). Pools are never closed here: a run's engines may still hold one."""
    import hashlib
    import json

    from prefmill.engines.ray_pool import RayEnginePool

    refs = hashlib.sha256(json.dumps(sorted(references.items())).encode()).hexdigest() if cfg.kind == "scripted" else ""
    key = f"ray:{_key(cfg)}:{runner.model_dump_json()}:{refs}"
    if (pool := _ENGINES.get(key)) is None:
        pool = RayEnginePool(cfg, runner, references=references if cfg.kind == "scripted" else None)
        _ENGINES[key] = pool
    return pool
