"""`prefmill deploy`: the scheduled deployments of a Prefect project file (deployments/prefect.yaml) on
the Prefect server in `PREFECT_API_URL`, with what they need there: each named process work pool, and
the global concurrency limit that lets one flow at a time hold the accelerator (flows.gpu).

The file is Prefect's own `prefect.yaml` format (`prefect deploy --prefect-file ... --all` reads it
too); prefmill reads `deployments[].{name, entrypoint, parameters, work_pool.name, schedules[].cron /
interval / timezone / active, concurrency_limit, description, tags}` and its own `prefmill.gpu_limit`.
Applying twice changes nothing: pools and limits are created when missing, deployments upserted.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate, WorkPoolCreate
from prefect.exceptions import ObjectNotFound
from prefect.flows import Flow
from prefect.schedules import Cron, Interval

from prefmill.errors import ConfigError
from prefmill.flows.gpu import GPU_LIMIT


def read_project(file: Path) -> dict[str, Any]:
    """The project file, checked for what prefmill needs; errors name the file and the deployment."""
    try:
        spec = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{file}: cannot read the deployments file ({type(exc).__name__}: {exc})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("deployments"), list) or not spec["deployments"]:
        raise ConfigError(f"{file}: expected a `deployments:` list", hint="see deployments/prefect.yaml")
    for i, d in enumerate(spec["deployments"]):
        missing = [k for k in ("name", "entrypoint") if not (isinstance(d, dict) and d.get(k))]
        if missing or not isinstance(d.get("work_pool", {}).get("name"), str):
            raise ConfigError(f"{file}: deployments[{i}] needs name, entrypoint and work_pool.name; missing "
                              f"{', '.join(missing) or 'work_pool.name'}")
    return spec


def _schedule(entry: dict[str, Any], where: str) -> Cron | Interval:
    tz, active = entry.get("timezone", "UTC"), entry.get("active", True)
    if "cron" in entry:
        return Cron(entry["cron"], timezone=tz, active=active)
    if "interval" in entry:
        return Interval(dt.timedelta(seconds=float(entry["interval"])), timezone=tz, active=active)
    raise ConfigError(f"{where}: a schedule needs `cron` or `interval` (seconds); got {sorted(entry)}")


def ensure_pool(name: str) -> None:
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))


def ensure_gpu_limit(name: str, slots: int) -> None:
    with get_client(sync_client=True) as client:
        try:
            current = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=slots))
            return
        if current.limit != slots:
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=slots))


def apply(file: Path, *, project: Path) -> list[str]:
    """Create what the deployments need and upsert them; returns `flow/deployment` names. `project` is
    the folder entrypoints and recipe paths are relative to (the flow runs there)."""
    spec = read_project(file)
    gpu = (spec.get("prefmill") or {}).get("gpu_limit") or {}
    ensure_gpu_limit(gpu.get("name", GPU_LIMIT), int(gpu.get("slots", 1)))
    names = []
    for i, d in enumerate(spec["deployments"]):
        where = f"{file}: deployments[{i}] ({d['name']})"
        ensure_pool(d["work_pool"]["name"])
        flow = Flow.from_source(source=str(project.resolve()), entrypoint=d["entrypoint"])
        flow.deploy(
            name=d["name"], work_pool_name=d["work_pool"]["name"], parameters=d.get("parameters") or {},
            schedules=[_schedule(s, where) for s in d.get("schedules") or []],
            concurrency_limit=d.get("concurrency_limit"), description=d.get("description"),
            tags=d.get("tags") or [], build=False, push=False, print_next_steps=False,
        )
        names.append(f"{flow.name}/{d['name']}")
    return names
