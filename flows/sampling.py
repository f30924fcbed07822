"""The start both recipes share: read and decontaminate prompts, sample n answers per prompt in
checkpointed chunks through the store's rollout cache, verify them. Called inside a flow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prefmill import progress
from prefmill.config import EngineConfig, RunConfig
from prefmill.engines import engine_for
from prefmill.engines.cached import CachingEngine, RolloutCache
from prefmill.refs import TableRef
from prefmill.store import file_sha256
from prefmill.tasks.wrappers import (
    concat_task,
    decontaminate_task,
    generate_task,
    load_prompts_task,
    result_storage,
    verify_task,
)


@dataclass(frozen=True)
class Stage:
    """Where a run keeps its work: the store, the dataset's cache folder, Prefect's result storage."""

    root: Path
    work: str
    storage: object

    @classmethod
    def of(cls, store: str, cfg: RunConfig) -> "Stage":
        root = Path(store)
        return cls(root, str((root / ".cache" / cfg.dataset).resolve()), result_storage(root))

    def task(self, task):
        """`task` with persisted results; if a cached result points at a deleted file, recomputed."""
        persisted = task.with_options(result_storage=self.storage)

        def call(*args, **kwargs):
            result = persisted(*args, **kwargs)
            refs = result if isinstance(result, tuple) else (result,)
            if all(Path(ref.path).is_file() for ref in refs):
                return result
            return persisted.with_options(refresh_cache=True)(*args, **kwargs)

        return call

    def rollout_cache(self) -> RolloutCache:
        return RolloutCache(self.root / ".cache" / "rollouts")


@dataclass(frozen=True)
class Sampled:
    prompts: TableRef
    decontamination: TableRef | None
    samples: TableRef
    engine: CachingEngine


def engine_or_policy(cfg: EngineConfig | None, policy: CachingEngine) -> CachingEngine:
    """The engine a stage names (`judge.engine`, `rise.engine`) behind the same rollout cache; null: the policy's."""
    return policy if cfg is None else CachingEngine(engine_for(cfg), policy.cache)


def _file_ref(path: str) -> TableRef:
    file = Path(path)
    return TableRef(str(file), -1, file_sha256(file))


def sample_and_verify(cfg: RunConfig, stage: Stage) -> Sampled:
    work = stage.work
    prompts = load_prompts_task(cfg.source, work=work)
    decontamination = None
    if cfg.decontamination.enabled:
        evals = [_file_ref(path) for path in cfg.decontamination.eval_files]
        prompts, decontamination = stage.task(decontaminate_task)(prompts, evals, cfg=cfg.decontamination, work=work)

    frame = prompts.read()
    policy = engine_for(cfg.engine, references=dict(zip(frame["question"], frame["reference"])))
    engine = CachingEngine(policy, stage.rollout_cache())

    generate = stage.task(generate_task)
    size = cfg.generate.chunk_size
    chunks = []
    for start in range(0, prompts.rows, size):
        chunks.append(generate(prompts, start=start, size=size, cfg=cfg.generate, engine=engine, work=work))
        progress.report("generate", min(start + size, prompts.rows), prompts.rows)
    samples = stage.task(verify_task)(stage.task(concat_task)(chunks, work=work), prompts, cfg=cfg.verify, work=work)
    return Sampled(prompts, decontamination, samples, engine)
