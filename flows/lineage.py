"""Lineage: which earlier version a run compares itself with. "Previous iteration" means the latest
version made by another model (engine fingerprint), not merely the previous folder (CREAM); the
anchor is the lineage's first model, the future a named version of a newer model (Temporal
Self-Rewarding)."""

from __future__ import annotations

from prefmill.config import EngineConfig, RunConfig
from prefmill.engines import engine_for
from prefmill.engines.cached import CachingEngine
from prefmill.errors import ConfigError, StoreError
from prefmill.flows.gpu import GpuSlot
from prefmill.flows.sampling import Sampled
from prefmill.refs import TableRef
from prefmill.store import first_iteration, read_manifest


def samples_of(sampled: Sampled, cfg: RunConfig, version: str) -> TableRef:
    """The published samples of `version`, checked against its manifest when read."""
    rel = "data/samples/train-00000-of-00001.parquet"
    info = read_manifest(sampled.root, cfg.dataset, version).get("files", {}).get(rel)
    if info is None:
        raise ConfigError(f"{cfg.dataset} {version} has no samples ({rel}): not a preference version",
                          hint="name a version made by the preference recipe")
    return TableRef(str(sampled.root / cfg.dataset / version / rel), info["rows"], info["sha256"], info.get("bytes", -1))


def anchor_samples(sampled: Sampled, cfg: RunConfig) -> tuple[TableRef | None, str | None]:
    """Temporal Self-Rewarding's anchor: the lineage's first version, unless this run's model made it
    (then this run is the initial model, there is nothing older to anchor to: `no_parent_sample`)."""
    first = first_iteration(sampled.root, cfg.dataset)
    if first is None or read_manifest(sampled.root, cfg.dataset, first).get("engine") == sampled.engine.fingerprint:
        return None, None
    return samples_of(sampled, cfg, first), first


def future_samples(sampled: Sampled, cfg: RunConfig) -> tuple[TableRef, str]:
    """Future-Guided Chosen's samples: `pairs.future_version`, which another (newer) model must have made."""
    version = cfg.pairs.future_version
    try:
        manifest = read_manifest(sampled.root, cfg.dataset, version)
    except StoreError as exc:
        raise ConfigError(f"pairs.future_version: {exc.message}", hint="name a version of this dataset "
                          "sampled by the future model (`prefmill versions DATASET`)") from None
    if manifest.get("engine") == sampled.engine.fingerprint:
        raise ConfigError(f"pairs.future_version: {cfg.dataset} {version} was made by this run's own model, "
                          "not a newer one", hint="name a version sampled by the future model")
    return samples_of(sampled, cfg, version), version


def previous_judge(sampled: Sampled, cfg: RunConfig, version: str) -> CachingEngine:
    """The previous iteration's judge behind the run's rollout cache: `filters.cream_judge`, else the
    engine `version`'s manifest recorded (`config.judge.engine`, else `config.engine`)."""
    judge_cfg = cfg.filters.cream_judge
    if judge_cfg is None:
        recorded = read_manifest(sampled.root, cfg.dataset, version).get("config", {})
        try:
            judge_cfg = EngineConfig.model_validate((recorded.get("judge") or {}).get("engine") or recorded["engine"])
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"CREAM: cannot rebuild the judge of {cfg.dataset} {version} from its manifest: {exc}",
                              hint="name it in filters.cream_judge") from None
    frame = sampled.prompts.read()
    references = dict(zip(frame["question"], frame["reference"]))
    return CachingEngine(GpuSlot(engine_for(judge_cfg, references=references, runner=cfg.runner)), sampled.engine.cache)
