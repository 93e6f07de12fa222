"""Migration coordination, once for every runtime: when a database's schema changes run.

- plan: each database's pending migrations (with the tables they touch and their risk) and the
  active one, as the database says or, where it cannot be asked from here, as the engine recorded;
- expand: right after the database's own step and before its dependents: back up, then start what
  is pending (the runtime's `Migrator` says how a step runs: in-process locally, a Job on Kubernetes);
- contract: after the walk, once every user of the database (services and jobs that read a version,
  as recorded in state) runs on the latest version;
- roll back after a failure: when a user or the expand failed, undo what this apply started, unless
  some user already runs on the new version (undoing it would break them: it stays active).

The engine records what it did on the database's resource (`migrations`: the ones applied,
`migration_active`: the one both versions share), so every runtime plans from the same facts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from symphony.errors import SymphonyError
from symphony.migrations.deploy import Pending
from symphony.migrations.versions import service_schemas, versions
from symphony.runtimes.base import Events, Migrator, Resource
from symphony.spec import Stack


@dataclass
class Migrations(Pending):
    """A database's migration files against what the database has (or what was recorded)."""

    known: bool = True  # False: the database is not running and has the facts (asked once it runs)
    rows: list[dict[str, Any]] | None = None  # the database's own rows, when it was asked

    @property
    def interrupted(self) -> str | None:
        """A start a crash interrupted: the next expand resumes it."""
        return next((n for n, s in self.states.items() if s == "starting"), None)


def status(stack: Stack, name: str, migrator: Migrator, prior: Resource | None) -> Migrations:
    from symphony.migrations.model import load_migrations

    spec = stack.services[name].postgres
    assert spec is not None and spec.migrations is not None
    files = load_migrations(spec.migrations)
    rows = migrator.status()
    if rows is not None:
        return Migrations(name, files, {r["name"]: r["state"] for r in rows}, rows=rows)
    if not migrator.recorded:
        return Migrations(name, files, known=False)
    recorded = prior.config if prior is not None else {}
    states = {n: "complete" for n in recorded.get("migrations") or []}
    if recorded.get("migration_active"):
        states[recorded["migration_active"]] = "active"
    return Migrations(name, files, states)


def rows(stack: Stack, found: Migrations) -> list[dict[str, Any]]:
    """`symphony migrate status`: each migration with its state and version schema."""
    if found.rows is not None:
        return found.rows
    spec = stack.services[found.service].postgres
    assert spec is not None and spec.migrations is not None
    return [{"name": n, "state": found.states.get(n, "pending"), "version_schema": v}
            for n, v in versions(spec.migrations)]


def plan_entries(found: Migrations, change: Any) -> list[dict[str, Any]]:
    """The plan's schema changes of one database; the database's change says what it will do."""
    from symphony.migrations.ops import impacts

    if not found.known and change.action not in ("create", "replace"):
        change.reasons.append("its migrations are checked once it runs")
        return []
    out = [{"service": found.service, "migration": m.name, "state": found.states.get(m.name, "pending"),
            "operations": impacts(m)} for m in found.todo]
    if found.active:
        out.append({"service": found.service, "migration": found.active, "state": found.states[found.active],
                    "operations": [], "note": "started earlier; completes once every release uses the new version"})
    if found.interrupted:
        if change.action == "noop":
            change.action = "migrate"
        change.reasons.append(f"migration {found.interrupted} was interrupted while starting: resume it")
    if found.todo:
        if change.action == "noop":
            change.action = "migrate"
        names = ", ".join(m.name for m in found.todo)
        change.reasons.append(f"{len(found.todo)} pending migration(s): {names} (backup first)")
    elif found.active and found.states.get(found.active) == "failed":
        change.reasons.append(f"migration {found.active} failed to start and its undo failed too: "
                              "symphony migrate rollback retries the undo")
    elif found.active and not found.interrupted:
        if change.action == "noop":
            change.action = "migrate"
        change.reasons.append(f"migration {found.active} is active: complete it")
    return out


def expand(stack: Stack, name: str, migrator: Migrator, prior: Resource | None, events: Events,
           found: Migrations | None = None) -> list[str]:
    """Resume a start a crash interrupted, then start what is pending (the runtime backs up first).
    Returns the names started. If starting fails, what this expand started is undone (never a
    migration that was active before it: releases may read it) and the error raised."""
    found = found or status(stack, name, migrator, prior)
    todo = [m.name for m in found.todo]
    resume = found.interrupted
    if not todo and not resume:
        return []
    started = todo if todo else [resume] if resume else []
    events(name, f"expand: {', '.join(started)} (backup first)" if todo else f"expand: resume {resume}")
    try:
        migrator.start(started, events)
    except Exception:
        _quietly(migrator.rollback, name, started[-1], events)  # undoes only started[-1] if it is the active one
        raise
    return started


def record(res: Resource, started: list[str] | None = None, active: str | None = None,
           forget: str | None = None) -> None:
    """Write the engine's migration bookkeeping onto a database's resource."""
    done = [n for n in res.config.get("migrations") or [] if n != forget]
    done += [n for n in started or [] if n not in done]
    res.config = {**res.config, "migrations": done, "migration_active": active}


def settle(res: Resource, outcome: str, migration: str) -> None:
    """Record what became of `migration`: complete, rolled_back, or still active (rollback_failed too)."""
    if outcome == "complete":
        record(res, active=None)
    elif outcome == "rolled_back":
        record(res, active=None, forget=migration)
    else:
        record(res, active=migration)


def users(stack: Stack, database: str) -> dict[str, str]:
    """Every service and job that reads a version of `database`, with the version it should read."""
    out = {}
    for name, svc in stack.services.items():
        schema = service_schemas(stack, svc).get(database)
        if schema is not None:
            out[name] = schema
    return out


def runs_on(res: Resource | None, database: str, schema: str) -> bool:
    """Whether the release recorded for a user reads version `schema` of `database`."""
    if res is None:
        return False
    recorded = res.config.get("schema") or {}
    return recorded.get(database, recorded.get("*")) == schema  # '*': a record of an older Symphony


def latest(stack: Stack, database: str) -> str | None:
    spec = stack.services[database].postgres
    found = versions(spec.migrations) if spec is not None and spec.migrations is not None else []
    return found[-1][1] if found else None


def finish(stack: Stack, name: str, migrator: Migrator, resources: dict[str, Resource], started: list[str],
           failed: set[str], events: Events) -> tuple[str, str] | None:
    """After the walk: contract, roll back or leave active the database's active migration. Returns
    (complete | rolled_back | rollback_failed | active, its name), or None when none is active (or
    the database cannot say now). Raises what the runtime raised while contracting."""
    found = status(stack, name, migrator, resources.get(name))
    active = found.active
    if active is None or not found.known:
        return None
    if found.states.get(active) != "active":  # half-started, or its undo failed: never contract that
        nxt = "the next deploy resumes it" if found.states.get(active) == "starting" else "its undo failed"
        events(name, f"migration {active} is {found.states.get(active)}: {nxt} (symphony migrate rollback "
                     "undoes it)")
        return "active", active
    newest = latest(stack, name)
    readers = users(stack, name)
    broken = [u for u in readers if u in failed]
    moved = [u for u in readers if newest is not None and runs_on(resources.get(u), name, newest)]
    if broken:
        if started and not moved:
            events(name, f"rollback: {active} ({', '.join(broken)} failed)")
            if _quietly(migrator.rollback, name, active, events):
                return "rolled_back", active
            return "rollback_failed", active
        why = f"{', '.join(moved)} already use(s) it" if moved else "it was started before this apply"
        events(name, f"migration {active} stays active: {why}; fix the failure and deploy again "
                     "(or symphony migrate rollback after a rollback)")
        return "active", active
    behind = [u for u, schema in readers.items() if schema != newest or u not in moved]
    if behind:
        events(name, f"migration {active} stays active: {', '.join(behind)} still use(s) the previous "
                     "schema version")
        return "active", active
    events(name, f"contract: {active}")
    migrator.complete(active, events)
    return "complete", active


def _quietly(step: Callable[[str, Events], None], name: str, migration: str, events: Events) -> bool:
    """Run an undo whose failure must not hide the failure that called for it; False if it failed."""
    try:
        step(migration, events)
    except SymphonyError as exc:  # the runtime's own words ("rollback Job failed: ...")
        events(name, str(exc))
        return False
    except Exception as exc:  # a database error while undoing: said, the migration stays recorded
        events(name, f"rollback of {migration} failed: {type(exc).__name__}: {exc}")
        return False
    return True
