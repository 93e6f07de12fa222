"""Migration coordination, once for every runtime: when a database's schema changes run, and which
releases may run on which of its versions.

- plan: each database's pending migrations (with the tables they touch and their risk), the open one
  and its rollback window, as the database says or, where it cannot be asked from here, as the engine
  recorded;
- guard: a plan never starts a release on a version schema that will not exist, nor leaves a running
  release on one it removes (refused before anything changes); what it makes impossible to roll back
  to is said in the plan;
- expand: right after the database's own step and before its dependents: back up, complete the open
  migration, then start what is pending (the runtime's `Migrator` says how a step runs: in-process
  locally, a Job on Kubernetes); a migration whose file changed while open is rolled back and started
  again;
- the rollback window: once every user runs on the new version, the open migration stays open (the
  previous version live beside it, kept in step both ways) so `symphony rollback` can bring the
  previous release back. It is completed (contracted) at the first of: the next deploy that brings
  another migration, `contract.after` since it started (at the first apply from then on), or
  `symphony migrate complete`;
- roll back after a failure: when a user or the expand failed, undo what this apply started, unless
  some user already runs on the new version (undoing it would break them: it stays active); and on
  `symphony rollback`, once no user is left on the open version, the open migration itself (asked).

The engine records what it did on the database's resource (`migrations`: the ones completed,
`migration_active`: the open one, with when it started and its file's digest), so every runtime
plans from the same facts.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from symphony.errors import PlanError, SymphonyError, UsageError
from symphony.migrations.deploy import UNDO_FIX, Pending, todo
from symphony.migrations.versions import service_schemas, versions
from symphony.runtimes.base import Events, Migrator, Resource, Runtime
from symphony.spec import Stack

if TYPE_CHECKING:
    from symphony.migrations.model import Migration

NEXT_MIGRATION = "the next deploy that brings another migration (or symphony migrate complete)"


@dataclass
class Migrations(Pending):
    """A database's migration files against what the database has (or what was recorded)."""

    known: bool = True  # False: the database is not running and has the facts (asked once it runs)
    rows: list[dict[str, Any]] | None = None  # the database's own rows, when it was asked
    versions: dict[str, str] = field(default_factory=dict)  # migration -> its version schema
    since: dict[str, float] = field(default_factory=dict)  # migration -> when it started (epoch seconds)
    changed: set[str] = field(default_factory=set)  # started migrations whose file changed since
    present: set[str] | None = None  # the version schemas the database has now (None: not asked)
    start_order: list[str] = field(default_factory=list)  # the migrations with a record, as they started

    @property
    def interrupted(self) -> str | None:
        """A start a crash interrupted: the next expand resumes it."""
        return next((n for n, s in self.states.items() if s == "starting"), None)

    @property
    def open(self) -> str | None:
        """The migration both versions share now (started, not completed)."""
        return next((n for n, s in self.states.items() if s == "active"), None)

    @property
    def restart(self) -> str | None:
        """The open migration, if its file changed since it started: roll back, then start again."""
        name = self.open
        return name if name in self.changed and any(m.name == name for m in self.migrations) else None

    def order(self) -> list[str]:
        """Every migration in order: those the database has a record of as they started (a file deleted
        since keeps its place), then the files never started."""
        recorded = self.start_order or [m.name for m in self.migrations if m.name in self.states]
        return recorded + [m.name for m in self.migrations if m.name not in recorded]

    def live(self, states: dict[str, str] | None = None) -> set[str]:
        """The version schemas that exist (in `states`, default now): the last completed one's, and the
        open one's."""
        now = states is None
        states = self.states if states is None else states
        previous = self.previous(states)
        out = {previous} if previous else set()
        out |= {self.versions[n] for n, s in states.items() if s == "active" and n in self.versions}
        return out & self.present if now and self.present is not None else out

    def previous(self, states: dict[str, str] | None = None) -> str | None:
        """The last completed migration's version schema (in `states`, default now): the version beside the
        open one (None: the plain tables, before any migration completed)."""
        states = self.states if states is None else states
        done = [n for n in self.order() if states.get(n) == "complete" and n in self.versions]
        return self.versions[done[-1]] if done else None

    def gone(self, version: str) -> tuple[str, str]:
        """Why `version` does not exist now: (migration, how), how being 'completed' (a later migration's
        completion removed it), 'missing' (the records say it exists, the database has no such schema), or
        the state of the migration that makes it."""
        if self.present is not None and version not in self.present and version in self.live(self.states):
            return next((n for n, v in self.versions.items() if v == version), version), "missing"
        return self.removed_by(version)

    def after_expand(self) -> dict[str, str]:
        """The states once this deploy's expand is done: a changed open one rolled back, an interrupted one
        resumed; with something pending, the open one completed, all pending but the last completed too."""
        states = dict(self.states)
        if self.restart:
            states[self.restart] = "rolled_back"
        if self.interrupted:
            states[self.interrupted] = "active"
        pending = [m.name for m in todo(self.migrations, states)]
        if pending:
            states.update({n: "complete" for n, s in states.items() if s == "active"})
            states.update({n: "complete" for n in pending[:-1]})
            states[pending[-1]] = "active"
        return states

    def removed_by(self, version: str, states: dict[str, str] | None = None) -> tuple[str, str]:
        """Why `version` does not exist in `states`: (the migration, 'completed') when a later migration's
        completion removed it, else (the migration that makes it, its state)."""
        states = self.states if states is None else states
        owner = next((n for n, v in self.versions.items() if v == version), None)
        if owner is None:
            return version, "unknown"
        if states.get(owner, "pending") != "complete" and states.get(owner) != "active":
            return owner, states.get(owner, "pending")
        order = self.order()
        later = order[order.index(owner) + 1:] if owner in order else []
        by = next((n for n in later if states.get(n) == "complete"), None)
        return (by, "completed") if by else (owner, states.get(owner, "pending"))


def digest(migration: Migration) -> str:
    """A migration file's content, as the engine would store it."""
    from symphony.migrations.engine import normal_data

    return hashlib.sha256(json.dumps(normal_data(migration.to_data()), sort_keys=True).encode()).hexdigest()[:16]


def status(stack: Stack, name: str, migrator: Migrator, prior: Resource | None) -> Migrations:
    from symphony.migrations.engine import version_schema_name
    from symphony.migrations.model import load_migrations

    spec = stack.services[name].postgres
    assert spec is not None and spec.migrations is not None
    files = load_migrations(spec.migrations)
    names = {m.name: version_schema_name(m) for m in files}
    rows = migrator.status()
    if rows is not None:
        present = {r["version_schema"] for r in rows if r.get("exists")} if any("exists" in r for r in rows) else None
        started = [r["name"] for r in sorted((r for r in rows if r.get("started_epoch")),
                                              key=lambda r: float(r["started_epoch"]))]
        return Migrations(name, files, {r["name"]: r["state"] for r in rows}, rows=rows,
                          versions={**names, **{r["name"]: r["version_schema"] for r in rows}},  # as started
                          since={r["name"]: float(r["started_epoch"]) for r in rows if r.get("started_epoch")},
                          changed={r["name"] for r in rows if r.get("changed")}, present=present, start_order=started)
    if not migrator.recorded:
        return Migrations(name, files, known=False, versions=names)
    recorded = prior.config if prior is not None else {}
    states = {n: "complete" for n in recorded.get("migrations") or []}
    since: dict[str, float] = {}
    changed: set[str] = set()
    active = recorded.get("migration_active")
    if active:
        states[active] = "active"
        if recorded.get("migration_since"):
            since[active] = float(recorded["migration_since"])
        file = next((m for m in files if m.name == active), None)
        if file is not None and recorded.get("migration_digest") not in (None, digest(file)):
            changed.add(active)
    order = list(recorded.get("migrations") or [])
    order += [active] if active and active not in order else []
    return Migrations(name, files, states, versions=names, since=since, changed=changed, start_order=order)


def read(stack: Stack, name: str, runtime: Runtime, outputs: dict[str, str] | None, prior: Resource | None
         ) -> Migrations:
    """`status` of database `name` through the runtime's migrator for it (`outputs`: its outputs, if known)."""
    spec = stack.services[name].postgres
    assert spec is not None
    return status(stack, name, runtime.migrator(name, spec, outputs), prior)


def rows(stack: Stack, found: Migrations) -> list[dict[str, Any]]:
    """`symphony migrate status`: each migration with its state and version schema."""
    if found.rows is not None:
        return found.rows
    return [{"name": n, "state": found.states.get(n, "pending"), "version_schema": v}
            for n, v in found.versions.items()]


# ------------------------------------------------------------------------------------ who reads what
def users(stack: Stack, database: str) -> dict[str, str]:
    """Every service and job of the spec that reads a version of `database`, with the version it should read."""
    out = {}
    for name, svc in stack.services.items():
        schema = service_schemas(stack, svc).get(database)
        if schema is not None:
            out[name] = schema
    return out


def version_of(res: Resource | None, database: str) -> str | None:
    """The version of `database` the release recorded for a user reads."""
    return version_in(res.config, database) if res is not None else None


def version_in(config: dict[str, Any], database: str) -> str | None:
    """The version of `database` a recorded config reads (None: the plain tables, or not a user)."""
    recorded = config.get("schema") or {}
    return recorded.get(database, recorded.get("*"))  # '*': a record of an older Symphony


def running(resources: dict[str, Resource], database: str, stack: Stack | None = None) -> dict[str, str]:
    """The recorded users that keep running on a version of `database`: services and scheduled jobs (of
    the spec, if given: the others are deleted by the plan)."""
    out = {}
    for name, res in resources.items():
        if stack is not None and name not in stack.services:
            continue
        version = version_of(res, database)
        if version is not None and (res.kind == "service" or res.config.get("schedule")):
            out[name] = version
    return out


def plain(resources: dict[str, Resource], stack: Stack, database: str) -> dict[str, Resource]:
    """The recorded services and scheduled jobs of the spec that read `database` without a version (no
    `schema:`): the plain tables, whose shape changes when a migration completes."""
    out = {}
    ref = "${" + database + "."
    for name, res in resources.items():
        if name not in stack.services or version_of(res, database) is not None:
            continue
        if res.kind != "service" and not res.config.get("schedule"):
            continue
        env = res.config.get("env") or {}
        if database in (res.config.get("depends_on") or []) or any(ref in str(v) for v in env.values()):
            out[name] = res
    return out


def latest(stack: Stack, database: str) -> str | None:
    spec = stack.services[database].postgres
    found = versions(spec.migrations) if spec is not None and spec.migrations is not None else []
    return found[-1][1] if found else None


# ------------------------------------------------------------------------------------ the window
@dataclass
class Window:
    """The open migration of a database: the versions live side by side, and until when."""

    database: str
    migration: str
    version: str | None  # the new version schema
    previous: str | None  # the version a rollback goes back to (None: the plain tables)
    since: float | None
    closes: float | None  # None: at the next deploy that brings another migration
    users: dict[str, str]  # recorded user -> the version it runs on

    @property
    def until(self) -> str:
        if self.closes is None:
            return NEXT_MIGRATION
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.closes))

    @property
    def expired(self) -> bool:
        return self.closes is not None and time.time() >= self.closes

    def to_json(self) -> dict[str, Any]:
        return {"database": self.database, "migration": self.migration, "version": self.version,
                "previous": self.previous, "since": self.since, "closes": self.closes, "until": self.until,
                "users": self.users}

    def line(self) -> str:
        on = ", ".join(f"{u} on {v}" for u, v in sorted(self.users.items())) or "no release recorded on it"
        return (f"migration {self.migration} is open ({self.previous or 'the plain tables'} and {self.version} "
                f"both live; {on}); rollback possible until {self.until}")


def window(stack: Stack, found: Migrations, resources: dict[str, Resource]) -> Window | None:
    name = found.open
    if name is None or not found.known:
        return None
    spec = stack.services[found.service].postgres
    after = spec.contract.after if spec is not None else None
    since = found.since.get(name)
    if since is None and after is not None:  # not known (a record of an older Symphony): from now
        since = time.time()
    return Window(found.service, name, found.versions.get(name), found.previous(),
                  since, since + after if after is not None and since is not None else None,
                  running(resources, found.service, stack))


def _all_on_latest(stack: Stack, found: Migrations) -> bool:
    """Every user of the spec reads the latest version (so it will, once the plan's rollouts are done)."""
    newest = latest(stack, found.service)
    return newest is not None and all(v == newest for v in users(stack, found.service).values())


# ------------------------------------------------------------------------------------ plan
def plan_entries(stack: Stack, found: Migrations, change: Any, resources: dict[str, Resource]) -> list[dict[str, Any]]:
    """The plan's schema changes of one database; the database's change says what it will do."""
    from symphony.migrations.ops import impacts

    if not found.known and change.action not in ("create", "replace"):
        change.reasons.append("its migrations are checked once it runs")
        return []

    def act(reason: str) -> None:
        if change.action == "noop":
            change.action = "migrate"
        change.reasons.append(reason)

    out = [{"service": found.service, "migration": m.name, "state": found.states.get(m.name, "pending"),
            "operations": impacts(m)} for m in found.todo]
    win = window(stack, found, resources)
    restart = found.restart
    if found.active:
        note = "started earlier; completes once every release uses the new version"
        if win is not None:
            note = win.line()
        if restart:
            note = "its file changed while open: rolled back, then started again"
        out.append({"service": found.service, "migration": found.active, "state": found.states[found.active],
                    "operations": [] if not restart else impacts(next(m for m in found.migrations
                                                                      if m.name == restart)),
                    "note": note})
    if found.interrupted:
        act(f"migration {found.interrupted} was interrupted while starting: resume it")
    if restart:
        act(f"migration {restart} changed while open: roll it back, then start it again (backup first)")
    if found.todo:
        names = ", ".join(m.name for m in found.todo)
        act(f"{len(found.todo)} pending migration(s): {names} (backup first)")
        if found.open and not restart:
            change.reasons.append(f"completes open migration {found.open} first: its rollback window closes")
    elif found.active and found.states.get(found.active) == "failed":
        change.reasons.append(f"migration {found.active} failed to start and its undo failed too: "
                              "symphony migrate rollback retries the undo")
    elif win is not None and not restart and win.expired and _all_on_latest(stack, found):
        spec = stack.services[found.service].postgres
        after = spec.contract.after if spec is not None else None
        closed = f"closed at {win.until}" if after else "is closed (contract.after 0s)"
        act(f"migration {win.migration}: its rollback window {closed}: complete it once every user runs the new "
            "version")
    return out


def guard(stack: Stack, found: Migrations, resources: dict[str, Resource], changes: dict[str, Any],
          expands: bool) -> list[str]:
    """Refuse (PlanError) a plan that would start a release on a version of the database that will not
    exist, leave a running release on a version (or plain tables) it removes or changes, or restart an
    edited migration under the releases that write to it. Returns what the plan must warn of: the
    current releases that cannot be rolled back to afterwards."""
    if not found.known:
        return []
    db = found.service
    blocked = found.blocked() if expands else None
    if blocked is not None:
        raise PlanError(f"{db}: {blocked}", fix=UNDO_FIX)
    states = found.after_expand() if expands else found.states
    after = found.live(states)
    live = running(resources, db, stack)
    restart = found.restart if expands else None
    if restart:
        on = sorted(u for u, v in live.items() if v == found.versions.get(restart))
        if on:
            raise PlanError(
                f"migration {restart} changed while open, and {', '.join(on)} run(s) on its version "
                f"{found.versions.get(restart)}: starting it again would drop what they wrote to its new columns",
                fix=f"roll them back first (symphony rollback {on[0]}), or put the change in a new migration file")
    completes = [n for n, st in states.items() if st == "complete" and found.states.get(n) != "complete"]
    if completes:
        for user, res in sorted(plain(resources, stack, db).items()):
            change = changes.get(user)
            if change is None or change.is_noop or not (change.config.get("schema") or {}).get(db):
                raise PlanError(f"{user}{_release(res)} reads the plain tables of {db} (no schema:), which completing "
                                f"migration {completes[0]} changes", fix=f"give {user} schema: latest")
    warnings = []
    for user in sorted(set(users(stack, db)) | set(live)):
        change = changes.get(user)
        moving = change is not None and not change.is_noop and change.action != "delete"
        want = (change.config.get("schema") or {}).get(db) if change is not None and moving else None
        if want is not None and want not in after:
            by, how = found.removed_by(want, states)
            why = f"migration {by} removes it when it completes" if how == "completed" else f"migration {by} is {how}"
            fix = "set schema: to a newer migration (or latest)"
            if how == "failed":
                fix = "symphony migrate rollback retries its undo; then deploy again"
            raise PlanError(f"{user}: its release would start on version {want} of {db}, which will not exist ({why})",
                            fix=fix)
        current = live.get(user)
        if current is None or current in after:
            continue
        by, how = found.removed_by(current, states)
        res = resources[user]
        if change is not None and change.is_noop and change.kind == "job" and users(stack, db).get(user) != current:
            raise PlanError(  # the spec moves it, but a run of it is going on now: the plan leaves it be
                f"{user} is running now, on version {current} of {db}, which this plan removes (migration {by} "
                "completes)", fix="deploy again once this run has finished")
        if want is None or want == current:
            raise PlanError(
                f"{user}{_release(res)} runs on version {current} of {db}, which this plan removes "
                f"(migration {by} completes)",
                fix=f"deploy {user} on a newer schema version in the same plan, or roll the open migration back "
                    "first (symphony migrate rollback)")
        warnings.append(f"{user}'s current release{_release(res, bare=True)} on {current} cannot be rolled back to "
                        f"afterwards: {current} goes when migration {by} completes in this deploy, and until {user}'s "
                        "new release is live its old instances have no schema (one migration per deploy keeps both)")
    return warnings


def _release(res: Resource, bare: bool = False) -> str:
    if not res.release:
        return ""
    return f" ({res.release})" if bare else f" (release {res.release})"


def check_start(found: Migrations, user: str, version: str) -> None:
    """Refuse to start a release of `user` on a version schema of the database that does not exist."""
    if not found.known or version in found.live():
        return
    raise PlanError(f"{user}: version {version} of {found.service} does not exist ({_why(found, version)}); the "
                    "release was not started", fix="deploy it on a version that exists, e.g. schema: latest")


def _why(found: Migrations, version: str) -> str:
    by, how = found.gone(version)
    if how == "completed":
        return f"migration {by} removed it when it completed"
    if how == "missing":
        return f"migration {by} made it, but the database has no such schema: it was dropped outside Symphony"
    return f"migration {by} is {how.replace('_', ' ')}"


def check_rollback(found: Migrations, user: str, release: str | None, revision: int, version: str) -> None:
    """Refuse a rollback of `user` to a release whose version schema is gone: before anything changes."""
    if not found.known or version in found.live():
        return
    by, how = found.gone(version)
    way = "deploy a fix forward"
    if how in ("completed", "missing"):
        when = f"taken before {by} started" if how == "completed" else "that has it"
        way += f", or restore {found.service} from a backup {when} (symphony restore; every write since then is lost)"
    raise PlanError(f"cannot roll {user} back to release {release} (revision {revision}): it reads version {version} "
                    f"of {found.service}, which no longer exists ({_why(found, version)})", fix=way)


def check_by_hand(stack: Stack, found: Migrations, resources: dict[str, Resource], action: str) -> None:
    """`symphony migrate complete|rollback` never removes a version (or changes the plain tables) a running
    release reads."""
    name = found.open
    if name is None:
        return
    keeps = found.versions.get(name, name)
    if action == "complete":
        for user, res in sorted(plain(resources, stack, found.service).items()):
            raise UsageError(f"{user}{_release(res)} reads the plain tables of {found.service} (no schema:), which "
                             f"completing {name} changes", fix=f"give {user} schema: latest and deploy it first")
    gone = found.live() - {keeps} if action == "complete" else {keeps}
    on = sorted((u, v) for u, v in running(resources, found.service, stack).items() if v in gone)
    if not on:
        return
    who = ", ".join(f"{u}{_release(resources[u])}" for u, _ in on)
    if action == "complete":
        raise UsageError(f"{who} still run(s) on {on[0][1]}, which completing {name} removes",
                         fix="deploy them on the new version first (symphony deploy), or roll the migration back")
    raise UsageError(f"{who} run(s) on {keeps}, which rolling back {name} drops",
                     fix=f"roll them back first (symphony rollback {on[0][0]}): it offers to roll the migration back too")


def schema_rollback(found: Migrations, resources: dict[str, Resource], moving: dict[str, str | None]
                    ) -> dict[str, Any] | None:
    """What `symphony rollback` offers once `moving` (user -> the version it goes back to) is done: the
    open migration, if no user is left on its version."""
    from symphony.migrations.ops import impacts

    name = found.open
    if name is None or not found.known or found.restart:
        return None
    version = found.versions.get(name)
    after = {**running(resources, found.service), **moving}
    if any(v == version for v in after.values()):
        return None
    file = next((m for m in found.migrations if m.name == name), None)
    return {"service": found.service, "migration": name, "state": "active", "action": "rollback",
            "operations": impacts(file) if file is not None else [],
            "note": f"roll it back: nothing uses {version} any more (its new columns and version schema are "
                    "dropped; the old data is kept)"}


# ------------------------------------------------------------------------------------ apply
def expand(stack: Stack, name: str, migrator: Migrator, prior: Resource | None, events: Events,
           found: Migrations | None = None) -> list[str]:
    """Resume a start a crash interrupted, or roll back an open migration whose file changed, then start
    what is pending (the runtime backs up first). Returns the names started. If starting fails, what this
    expand started is undone (never a migration that was active before it: releases may read it) and the
    error raised."""
    found = found or status(stack, name, migrator, prior)
    restart = found.restart
    pending = [m.name for m in found.todo]
    if restart:
        pending = [restart] + pending
    resume = found.interrupted
    if not pending and not resume:
        return []
    started = pending if pending else [resume] if resume else []
    if restart:
        events(name, f"expand: {restart} changed while open: roll it back, then start {', '.join(started)} "
                     "(backup first)")
    elif pending:
        events(name, f"expand: {', '.join(started)} (backup first)")
    else:
        events(name, f"expand: resume {resume}")
    try:
        migrator.start(started, events, restart=restart)
    except Exception:
        _quietly(migrator.rollback, name, started[-1], events)  # undoes only started[-1] if it is the active one
        raise
    return started


def closed_by_failed_start(found: Migrations, migrator: Migrator) -> str | None:
    """The open migration a failed start may have completed before it failed (a start completes the open
    one first). A runtime that cannot ask the database records it as complete: that refuses a rollback
    onto its previous version that might still work, rather than allow one onto a schema that may be gone."""
    if not migrator.recorded or found.open is None or found.restart or not found.todo:
        return None
    return found.open


def record(res: Resource, started: list[str] | None = None, active: str | None = None,
           forget: str | None = None, files: list[Migration] | None = None) -> None:
    """Write the engine's migration bookkeeping onto a database's resource."""
    done = [n for n in res.config.get("migrations") or [] if n != forget]  # started, not rolled back
    done += [n for n in started or [] if n not in done]
    config = {**res.config, "migrations": done, "migration_active": active}
    if active is None:
        config.update(migration_since=None, migration_digest=None)
    elif active in (started or []) or active != res.config.get("migration_active"):
        file = next((m for m in files or [] if m.name == active), None)
        config.update(migration_since=time.time(), migration_digest=digest(file) if file is not None else None)
    res.config = config


def settle(res: Resource, outcome: str, migration: str) -> None:
    """Record what became of `migration`: complete, rolled_back, or still active (rollback_failed too)."""
    if outcome == "complete":
        record(res, active=None)
    elif outcome == "rolled_back":
        record(res, active=None, forget=migration)
    else:  # an older record without the start time: the window's age counts from now on
        res.config = {**res.config, "migration_active": migration,
                      "migration_since": res.config.get("migration_since") or time.time()}


def finish(stack: Stack, name: str, migrator: Migrator, resources: dict[str, Resource], started: list[str],
           failed: set[str], events: Events, earlier: set[str | None] | None = None) -> tuple[str, str] | None:
    """After the walk: contract, roll back or leave open the database's active migration. Returns
    (complete | rolled_back | rollback_failed | active, its name), or None when none is active (or
    the database cannot say now). `earlier`: the versions (None: the plain tables) every release of the
    database's users ever deployed read; when all read the new one, there is nothing to roll back to and
    it completes at once (a fresh install). Raises what the runtime raised while contracting."""
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
    moved = [u for u in readers if newest is not None and version_of(resources.get(u), name) == newest]
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
    win = window(stack, found, resources)
    holding = sorted(plain(resources, stack, name))
    if holding:
        if started or (win is not None and win.expired):
            events(name, f"migration {active} stays open: {', '.join(holding)} read(s) the plain tables (no "
                         "schema:), which completing it changes")
        return "active", active
    fresh = earlier is not None and not earlier - {newest}
    if win is not None and not win.expired and not fresh:
        if started:
            events(name, f"migration {active} stays open: rollback possible until {win.until}")
        return "active", active
    why = " (no earlier release to roll back to)" if fresh else " (its rollback window closed)" if win and win.closes \
        else ""
    events(name, f"contract: {active}{why}")
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
