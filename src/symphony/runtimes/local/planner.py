"""The local runtime's plan of one service: the recorded config hash against the desired one, and
what the agent sees running (a stopped or crashed service is started, a missing data folder is drift).
What would fail half-way (missing binaries, a port taken by another process) stops the plan here."""

from __future__ import annotations

from collections.abc import Callable

from symphony.diff import diff
from symphony.errors import PlanError
from symphony.runtimes.base import MIGRATION_KEYS, Desired, Observed, Planned, Resource, ServicePlan

# PostgreSQL settings that only take effect after a restart (the common ones; the apply asks the server).
RESTART_SETTINGS = {
    "shared_buffers",
    "max_connections",
    "shared_preload_libraries",
    "wal_level",
    "max_wal_senders",
    "max_replication_slots",
    "max_worker_processes",
    "huge_pages",
    "port",
    "listen_addresses",
}
PREFLIGHT_ACTIONS = ("create", "update", "start", "replace", "restart")


def plan_service(request: ServicePlan) -> Planned:
    kind = request.service.kind
    if kind == "postgres":
        return _plan_postgres(request.desired, request.prior, request.observed)
    if kind == "service":
        return _plan_service(request.desired, request.prior, request.observed)
    return _plan_job(request.desired, request.prior, request.observed, request.service.schedule)


def preflight(request: ServicePlan, planned: Planned, spec_file: object, find_postgres: Callable[[int], object],
              find_switch: Callable[[], object], port_conflict: Callable[[int, str, str], str | None]) -> None:
    """What would fail half-way stops the plan before anything is touched: missing binaries, taken ports."""
    svc = request.service
    if planned.action not in PREFLIGHT_ACTIONS:
        return
    if svc.postgres is not None:
        find_postgres(svc.postgres.version)
    if svc.kind == "service" and svc.port:
        find_switch()
    port = svc.port if svc.kind == "service" else (svc.postgres.port if svc.postgres else None)
    if not port:
        return
    bind = svc.bind if svc.kind == "service" or svc.postgres is None else svc.postgres.bind
    conflict = port_conflict(port, bind, svc.name)
    if conflict:
        key = f"services.{svc.name}.port" if svc.kind == "service" else f"services.{svc.name}.postgres.port"
        raise PlanError(f"{spec_file}: {key}: {conflict}", fix="stop that process or choose another port")


def _recorded(res: Resource) -> dict[str, object]:
    return {k: v for k, v in res.config.items() if k not in MIGRATION_KEYS}


def _not_running(obs: Observed | None) -> str | None:
    if obs is None or obs.state == "stopped":
        return "not running (stopped)"
    if obs.state == "failed":
        return f"not running: {obs.detail or 'failed'}"
    return None


def _plan_postgres(want: Desired, res: Resource | None, obs: Observed | None) -> Planned:
    ch = Planned("noop")
    volume = obs.volume if obs else None
    if res is None:
        if obs and obs.volume_exists:
            return Planned("create", [f"new database service; reuses the existing volume {volume}"])
        return Planned("create", ["new database service"])
    if obs is not None and obs.volume_exists is False:
        return Planned("replace", [f"drift: its data folder {volume} is missing; a new empty database will be created"])
    if res.config_hash != want.config_hash:
        details = diff(_recorded(res), want.config)
        ch.details = details
        if res.config.get("version") != want.config.get("version"):
            ch.action = "update"
            ch.reasons = ["major version change (not supported in place: needs a backup and restore)"]
            return ch
        restart = [d for d in details if d.startswith(("port", "bind", "user")) or _setting(d) in RESTART_SETTINGS]
        reload = [d for d in details if d.startswith("settings.") and d not in restart]
        ch.action = "restart" if restart else "update"
        reasons = []
        if restart:
            reasons.append("restart: " + ", ".join(d.split(":")[0] for d in restart))
        if reload:
            reasons.append("reload: " + ", ".join(d.split(":")[0] for d in reload))
        if any(d.startswith("databases") for d in details):
            reasons.append("databases: " + want.config["databases"].__repr__())
        ch.reasons = reasons or ["config changed"]
    why = _not_running(obs)
    if why:
        if ch.action == "noop":
            ch.action = "start"
        ch.reasons.append(why)
    return ch


def _setting(detail: str) -> str:
    return detail.split(":")[0].removeprefix("settings.")


def _against_record(want: Desired, res: Resource | None, new: Planned, changed: str) -> Planned | None:
    """What the recorded config calls for: `new` when nothing is recorded, `changed` when the outputs it
    uses are known only after apply or its config differs; None when it matches."""
    if res is None:
        return new
    if want.config_hash is None:
        return Planned(changed, [f"uses {', '.join(sorted(set(want.unknown)))}, known only after apply"])
    if res.config_hash != want.config_hash:
        details = diff(_recorded(res), want.config)
        return Planned(changed, _config_reasons(details) or ["a value it uses from another service changed"],
                       details)
    return None


def _plan_service(want: Desired, res: Resource | None, obs: Observed | None) -> Planned:
    ch = _against_record(want, res, Planned("create", ["new service"]), "update")
    if res is None or want.config_hash is None:
        assert ch is not None
        return ch
    if ch is None:
        ch = Planned("noop")
        if obs is not None and obs.is_up and obs.config_hash not in (None, want.config_hash):
            ch = Planned("update", ["drift: what runs differs from what was applied"])
    why = _not_running(obs)
    if why:
        if ch.action == "noop":
            ch.action = "start"
        ch.reasons.append(why)
    return ch


def _config_reasons(details: list[str]) -> list[str]:
    keys = sorted({d.split(":")[0].split(".")[0] for d in details})
    return [f"{k} changed" for k in keys]


def _plan_job(want: Desired, res: Resource | None, obs: Observed | None, schedule: str | None) -> Planned:
    if obs is not None and obs.state == "running":
        return Planned("noop", busy=True)  # running now (on its schedule): leave it be
    ch = _against_record(want, res, Planned("run", ["new job: never ran"]), "run")
    if ch is not None:
        return ch
    assert res is not None
    if schedule and obs is None and res.status != "failed":
        return Planned("schedule", [f"schedule '{schedule}' is not registered (the platform was down)"])
    return Planned("noop")
