"""Run the process flow with OmegaPRM and SIGKILL this process once a question is checkpointed.

    python -m tests.flows.kill_worker RECIPE_JSON STORE
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

if __name__ == "__main__":
    from prefmill.config import validate_config
    from prefmill.engines import engine_for, register_engine
    from prefmill.flows.process import process
    from prefmill.sources import load_prompts

    recipe, store = json.loads(sys.argv[1]), Path(sys.argv[2])
    cfg = validate_config(recipe)
    prompts = load_prompts(cfg.source)
    inner = engine_for(cfg.engine, references=dict(zip(prompts["question"], prompts["reference"])))

    class KillAfterFirstQuestion:
        fingerprint = inner.fingerprint

        def generate(self, requests):
            if list(store.glob(".cache/*/omegaprm/*-checkpoints/*.json")):
                os.kill(os.getpid(), signal.SIGKILL)
            return inner.generate(requests)

    register_engine(cfg.engine, KillAfterFirstQuestion())
    process(config=recipe, store=str(store))
    sys.exit("the flow finished before any question was checkpointed")
