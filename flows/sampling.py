"""The start both recipes share: read and decontaminate prompts, sample n answers per prompt in
checkpointed chunks through the store's rollout cache, verify them. Called inside a flow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefmill import progress
from prefmill.config import EngineConfig, RunConfig
from prefmill.engines import engine_for
from prefmill.engines.cached import CachingEngine, RolloutCache
from prefmill.flows.gpu import GpuSlot
from prefmill.flows.publish import load_eval_questions_task, load_prompts_task
from prefmill.flows.stages import concat_task, decontaminate_task, generate_task, verify_task
from prefmill.refs import TableRef
from prefmill.runner_config import RunnerConfig
from prefmill.store_location import Location, open_store, work_folder


@dataclass(frozen=True)
class Sampled:
    root: Path | Location  # the store: a folder, or a URL on object storage (versions, rollout cache)
    work: str  # the dataset's local cache folder: `<store>/.cache/<dataset>`, or under $PREFMILL_WORK for a URL
    prompts: TableRef
    decontamination: TableRef | None
    samples: TableRef
    engine: CachingEngine

    def cache_stats(self) -> dict[str, int]:
        return {"hits": self.engine.hits, "misses": self.engine.misses, "entries": len(self.engine.cache)}


def engine_or_policy(cfg: EngineConfig | None, policy: CachingEngine, *, runner: RunnerConfig) -> CachingEngine:
    """The engine a stage names (`judge.engine`, `rise.engine`) behind the same rollout cache; null: the policy's."""
    return policy if cfg is None else CachingEngine(GpuSlot(engine_for(cfg, runner=runner)), policy.cache)


def sample_and_verify(cfg: RunConfig, store: str) -> Sampled:
    root = open_store(store)
    work = str((work_folder(root) / cfg.dataset).resolve())
    prompts = load_prompts_task(cfg.source, work=work)
    decontamination = None
    if cfg.decontamination.enabled:
        questions = load_eval_questions_task(cfg.decontamination, work=work)
        prompts, decontamination = decontaminate_task(prompts, questions, cfg=cfg.decontamination, work=work)

    frame = prompts.read()
    policy = engine_for(cfg.engine, references=dict(zip(frame["question"], frame["reference"])), runner=cfg.runner)
    engine = CachingEngine(GpuSlot(policy), RolloutCache(root / ".cache" / "rollouts"))

    size = cfg.generate.chunk_size
    chunks = []
    for start in range(0, prompts.rows, size):
        chunks.append(generate_task(prompts, start=start, size=size, cfg=cfg.generate, engine=engine, work=work))
        progress.report("generate", min(start + size, prompts.rows), prompts.rows)
    samples = verify_task(concat_task(chunks, work=work), prompts, cfg=cfg.verify, work=work)
    return Sampled(root, work, prompts, decontamination, samples, engine)
