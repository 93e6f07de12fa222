"""The plan: desired (Stack) vs remembered (State) vs observed (Runtime) -> Changes, each with reasons.

A plan is data: printed, turned into JSON, applied, compared in tests. Making one changes nothing
(except that a dead local agent which should be supervising something is started again).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from symphony.desired import Desired, desired, known_outputs
from symphony.errors import PlanError
from symphony.graph import Graph
from symphony.migrations.versions import service_schemas
from symphony.runtimes.base import Observed, Runtime
from symphony.spec import Stack
from symphony.state import Resource

ACTIONS = ("create", "replace", "update", "restart", "start", "run", "schedule", "migrate", "delete", "noop")
SYMBOLS = {
    "create": "+",
    "replace": "-/+",
    "update": "~",
    "restart": "~",
    "start": ">",
    "run": ">",
    "schedule": "~",
    "migrate": "~",
    "delete": "-",
    "noop": " ",
}
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


@dataclass
class Change:
    service: str
    kind: str
    action: str
    reasons: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    config_hash: str | None = None
    release: str | None = None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def is_noop(self) -> bool:
        return self.action == "noop"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Plan:
    stack: str
    changes: list[Change]
    targets: list[str] = field(default_factory=list)
    migrations: list[dict[str, Any]] = field(default_factory=list)  # schema changes, per database service

    @property
    def actionable(self) -> list[Change]:
        return [c for c in self.changes if not c.is_noop]

    @property
    def has_changes(self) -> bool:
        return bool(self.actionable)

    def change(self, name: str) -> Change | None:
        return next((c for c in self.changes if c.service == name), None)

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for c in self.actionable:
            counts[c.action] = counts.get(c.action, 0) + 1
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "targets": self.targets,
            "has_changes": self.has_changes,
            "summary": self.summary(),
            "changes": [c.to_json() for c in self.changes],
            "migrations": self.migrations,
        }


def make_plan(
    stack: Stack,
    resources: dict[str, Resource],
    observed: dict[str, Observed],
    runtime: Runtime,
    targets: list[str] | None = None,
    preflight: bool = True,
) -> Plan:
    graph = Graph.from_stack(stack)
    scope = graph.closure(targets) if targets else set(stack.services)
    remembered = {n: r.outputs for n, r in resources.items()}
    outputs = known_outputs(stack, runtime, remembered)
    changes: dict[str, Change] = {}
    schema_changes: list[dict[str, Any]] = []
    for name in graph.order():
        if name not in scope:
            continue
        svc = stack.services[name]
        release = runtime.release_id(svc.source, svc.build_command()) if svc.source else None
        # A database that is (re)created gets outputs known only after apply.
        want = desired(svc, release, outputs, service_schemas(stack, svc))
        res = resources.get(name)
        obs = observed.get(name)
        if svc.kind == "postgres":
            change = _plan_postgres(want, res, obs)
            if change.action in ("create", "replace") and not (res and obs and obs.volume_exists):
                outputs[name] = outputs.get(name) if change.action != "replace" else None
            if svc.postgres is not None and svc.postgres.migrations is not None:
                url = (outputs.get(name) or {}).get("url") if obs is not None and obs.is_up else None
                _plan_migrations(name, svc.postgres, url, change, schema_changes)
        elif svc.kind == "service":
            change = _plan_service(want, res, obs, changes, graph)
        else:
            change = _plan_job(want, res, obs, changes, graph, svc.schedule)
        change.release = release
        if want.sensitive_env:
            change.details = [_redact_detail(d, want.sensitive_env) for d in change.details]
        changes[name] = change
    if not targets:
        for name, res in resources.items():
            if name not in stack.services:
                reason = "removed from the spec"
                if res.kind == "postgres":
                    reason += "; its volume is kept (symphony destroy deletes it)"
                changes[name] = Change(name, res.kind, "delete", [reason])
    plan = Plan(stack.name, list(changes.values()), sorted(targets or []), schema_changes)
    if preflight:
        _preflight(stack, plan, runtime)
    return plan


def _diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        path = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(_diff(a, b, path + "."))
        elif a is None:
            out.append(f"{path}: set to {_show(b)}")
        elif b is None:
            out.append(f"{path}: removed (was {_show(a)})")
        else:
            out.append(f"{path}: {_show(a)} -> {_show(b)}")
    return out


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def _redact_detail(detail: str, sensitive: set[str]) -> str:
    for key in sensitive:
        if detail.startswith(f"env.{key}:"):
            return f"env.{key}: (sensitive value changed)"
    return detail


def _not_running(obs: Observed | None) -> str | None:
    if obs is None or obs.state == "stopped":
        return "not running (stopped)"
    if obs.state == "failed":
        return f"not running: {obs.detail or 'failed'}"
    return None


def _plan_postgres(want: Desired, res: Resource | None, obs: Observed | None) -> Change:
    ch = Change(want.name, "postgres", "noop", config_hash=want.config_hash, config=want.config)
    volume = obs.volume if obs else None
    if res is None:
        if obs and obs.volume_exists:
            ch.action, ch.reasons = "create", [f"new database service; reuses the existing volume {volume}"]
        else:
            ch.action, ch.reasons = "create", ["new database service"]
        return ch
    if obs is not None and obs.volume_exists is False:
        ch.action = "replace"
        ch.reasons = [f"drift: its data folder {volume} is missing; a new empty database will be created"]
        return ch
    if res.config_hash != want.config_hash:
        details = _diff(res.config, want.config)
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


def _plan_migrations(name: str, spec: Any, url: str | None, change: Change, out: list[dict[str, Any]]) -> None:
    """Pending migrations of a database: each operation with the tables it touches and its risk."""
    from symphony.migrations.deploy import pending
    from symphony.migrations.ops import impacts

    state = pending(name, spec, url)
    if not state.reachable and change.action not in ("create", "replace"):
        change.reasons.append("its migrations are checked once it runs")
        return
    for m in state.todo:
        out.append({"service": name, "migration": m.name, "state": state.states.get(m.name, "pending"),
                    "operations": impacts(m)})
    if state.active:
        out.append({"service": name, "migration": state.active, "state": "active", "operations": [],
                    "note": "started earlier; completes once no release uses the previous version"})
    if state.todo and change.action == "noop":
        change.action = "migrate"
    if state.todo:
        names = ", ".join(m.name for m in state.todo)
        change.reasons.append(f"{len(state.todo)} pending migration(s): {names} (backup first)")
    elif state.active and change.action == "noop":
        change.action = "migrate"
        change.reasons.append(f"migration {state.active} is active: complete it")


def _setting(detail: str) -> str:
    return detail.split(":")[0].removeprefix("settings.")


def _upstream_changes(name: str, changes: dict[str, Change], graph: Graph) -> list[Change]:
    return [changes[d] for d in sorted(graph.dependencies(name)) if d in changes and not changes[d].is_noop]


def _plan_service(
    want: Desired, res: Resource | None, obs: Observed | None, changes: dict[str, Change], graph: Graph
) -> Change:
    ch = Change(want.name, "service", "noop", config_hash=want.config_hash, config=want.config)
    if res is None:
        ch.action, ch.reasons = "create", ["new service"]
        return ch
    if want.config_hash is None:
        ch.action = "update"
        ch.reasons = [f"uses {', '.join(sorted(set(want.unknown)))}, known only after apply"]
        return ch
    if res.config_hash != want.config_hash:
        ch.action = "update"
        ch.details = _diff(res.config, want.config)
        ch.reasons = _config_reasons(ch.details) or ["a value it uses from another service changed"]
    elif obs is not None and obs.is_up and obs.config_hash not in (None, want.config_hash):
        ch.action = "update"
        ch.reasons = ["drift: what runs differs from what was applied"]
    why = _not_running(obs)
    if why:
        if ch.action == "noop":
            ch.action = "start"
        ch.reasons.append(why)
    return ch


def _config_reasons(details: list[str]) -> list[str]:
    keys = sorted({d.split(":")[0].split(".")[0] for d in details})
    return [f"{k} changed" for k in keys]


def _plan_job(
    want: Desired,
    res: Resource | None,
    obs: Observed | None,
    changes: dict[str, Change],
    graph: Graph,
    schedule: str | None,
) -> Change:
    ch = Change(want.name, "job", "noop", config_hash=want.config_hash, config=want.config)
    if obs is not None and obs.state == "running":
        return ch  # running now (on its schedule): leave it be
    if res is None:
        ch.action, ch.reasons = "run", ["new job: never ran"]
        return ch
    if want.config_hash is None:
        ch.action, ch.reasons = "run", [f"uses {', '.join(sorted(set(want.unknown)))}, known only after apply"]
        return ch
    if res.config_hash != want.config_hash:
        ch.action = "run"
        ch.details = _diff(res.config, want.config)
        ch.reasons = _config_reasons(ch.details) or ["a value it uses from another service changed"]
    elif res.status == "failed":
        ch.action, ch.reasons = "run", ["its last run failed"]
    upstream = [c.service for c in _upstream_changes(want.name, changes, graph) if c.action == "run"]
    if upstream:
        ch.action = "run"
        ch.reasons.append(f"upstream job {', '.join(upstream)} re-runs")
    if ch.action == "noop" and schedule and obs is None:
        ch.action, ch.reasons = "schedule", [f"schedule '{schedule}' is not registered (the platform was down)"]
    return ch


def _preflight(stack: Stack, plan: Plan, runtime: Runtime) -> None:
    """What would fail half-way stops the plan before anything is touched: missing binaries, taken ports."""
    for change in plan.actionable:
        svc = stack.services.get(change.service)
        if svc is None or change.action not in ("create", "update", "start", "replace", "restart"):
            continue
        if svc.postgres is not None:
            runtime.preflight_postgres(svc.postgres)
        if svc.kind == "service" and svc.port:
            runtime.preflight_switch()
        port = svc.port if svc.kind == "service" else (svc.postgres.port if svc.postgres else None)
        if not port:
            continue
        bind = svc.bind if svc.kind == "service" else svc.postgres.bind  # type: ignore[union-attr]
        conflict = runtime.port_conflict(port, bind, svc.name)
        if conflict:
            key = f"services.{svc.name}.port" if svc.kind == "service" else f"services.{svc.name}.postgres.port"
            raise PlanError(
                f"{stack.file}: {key}: {conflict}",
                fix="stop that process or choose another port",
            )
