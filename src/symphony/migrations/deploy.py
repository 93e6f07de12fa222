"""Migrations inside a deploy: expand before the services roll out, contract once they are live,
roll back if they are not. Called by the executor (apply.py); the mechanics are in engine.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from symphony.migrations.engine import Engine, version_schema_name
from symphony.migrations.model import Migration, load_migrations


@dataclass
class Pending:
    """What a database's migrations folder asks for, against what the database has."""

    service: str
    migrations: list[Migration]
    states: dict[str, str] = field(default_factory=dict)  # name -> state (pending, active, complete...)
    reachable: bool = True

    @property
    def todo(self) -> list[Migration]:
        return [m for m in self.migrations if self.states.get(m.name, "pending") in ("pending", "rolled_back")]

    @property
    def active(self) -> str | None:
        return next((n for n, s in self.states.items() if s in ("active", "starting", "failed")), None)

    @property
    def latest_version(self) -> str | None:
        return version_schema_name(self.migrations[-1]) if self.migrations else None


def pending(service: str, spec: Any, url: str | None) -> Pending:
    """The migrations of `service` (a postgres spec with `migrations`) and their state in the database."""
    migrations = load_migrations(spec.migrations)
    out = Pending(service, migrations)
    if url is None:
        out.reachable = False
        return out
    try:
        status = Engine(url).status(migrations)
    except Exception:  # not running yet (a fresh stack): everything is pending
        out.reachable = False
        return out
    out.states = {m["name"]: m["state"] for m in status.migrations}
    return out


def expand(service: str, spec: Any, url: str, backup: Callable[[], list[Any]], events: Callable[[str, str], None]
           ) -> list[str]:
    """Repair a crashed start, back up, then apply what is pending: all but the last through start and
    complete (no release needs those versions), the last through start only. Returns the names started."""
    engine = Engine(url, events=lambda m: events(service, m))
    engine.repair()
    state = pending(service, spec, url)
    todo = state.todo
    if not todo:
        return []
    files = backup()
    events(service, f"backup before migrating: {', '.join(p.name for p in files)}")
    if state.active:
        engine.complete()
    position = {m.name: i for i, m in enumerate(state.migrations)}
    for m in todo[:-1]:
        engine.start(m, position[m.name])
        engine.complete()
    last = todo[-1]
    engine.start(last, position[last.name])
    return [m.name for m in todo]


def finish(stack: Any, service: str, url: str, applied: dict[str, dict[str, str]], started: bool, ok: bool,
           events: Callable[[str, str], None]) -> None:
    """After the services of a deploy: contract the active migration once every release that uses this
    database runs on the latest version; if the deploy failed, undo what it started, unless some
    release already serves on the new version (undoing it would break them: it stays active).

    `applied` maps each service to the schema versions its running releases use (from state).
    """
    from symphony.migrations.versions import service_schemas

    if not ok and not started:
        return
    engine = Engine(url, events=lambda m: events(service, m))
    status = pending(service, stack.services[service].postgres, url)
    latest = status.latest_version
    on_latest = sorted(user for user, schemas in applied.items() if schemas.get(service) == latest)
    if not ok:
        if on_latest:
            events(service, f"migration stays active: {', '.join(on_latest)} already use(s) it; "
                            "fix the failure and deploy again (or symphony migrate rollback after a rollback)")
        else:
            engine.rollback()
        return
    if status.active is None:
        return
    declared = {user: service_schemas(stack, svc).get(service) for user, svc in stack.services.items()}
    behind = sorted(user for user, schema in declared.items()
                    if schema is not None and (schema != latest or user not in on_latest))
    if behind:
        events(service, f"migration {status.active} stays active: {', '.join(behind)} "
                        "still use(s) the previous schema version")
        return
    engine.complete()
