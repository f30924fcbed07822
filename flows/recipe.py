"""A recipe by path, for scheduled deployments: the YAML is read when the run starts, so an edited
recipe takes effect at the next scheduled run, and only its path (never its content) is a deployment
parameter in Prefect's database."""

from __future__ import annotations

from typing import Any

from prefect import flow

from prefmill.config import load_config
from prefmill.flows.preference import preference
from prefmill.flows.process import process


@flow(name="recipe")
def run_recipe(recipe: str, store: str = "store", overrides: list[str] | None = None) -> dict[str, Any]:
    """Load `recipe` (a YAML path, relative to the working directory), apply `overrides` (`key=value`,
    as `prefmill run --set`), and run its flow (preference or process) as a subflow."""
    cfg = load_config(recipe, list(overrides or []))
    run = process if cfg.flow == "process" else preference
    return run(config=cfg.model_dump(mode="json"), store=store)
