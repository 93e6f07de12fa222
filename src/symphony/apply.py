"""The executor: walks a Plan over the dependency graph and commits each finished step to State.

One walk for every runtime. Independent changes run in parallel (as many at once as the runtime
says it can take); a change runs once everything it depends on is done. A failed step stops its
dependents (they are reported as skipped), never unrelated services. Each step is journaled before
and after, so an apply killed half-way leaves a trail the next one reads. A database's pending
migrations are expanded in the database's own step, before its dependents; once the walk is over
they are contracted or rolled back (symphony.coordination). A rollback is a one-change plan walked
the same way.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from symphony import coordination
from symphony.desired import deployment, deployment_from_config, known_outputs
from symphony.errors import ApplyError, PlanError, RuntimeFailure, SymphonyError
from symphony.graph import Graph
from symphony.migrations.versions import service_schemas
from symphony.plan import Change, Plan
from symphony.runtimes.base import MIGRATION_KEYS, SECRET_OUTPUTS, Applied, Deployment, Events, Runtime, Step
from symphony.spec import Stack
from symphony.state import Resource, StateStore

READY_DEADLINE = 120.0  # how long a step waits for a dependency that is still starting

if TYPE_CHECKING:  # the migration models load only where migrations are read
    from symphony.migrations.model import Migration


@dataclass
class ApplyResult:
    revision: int
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


@dataclass
class _Done:
    applied: Applied
    deployment: Deployment
    migrations: list[str]  # started by this step (a database's expand)
    files: list[Migration] = field(default_factory=list)  # the database's migration files, as read for it


def apply_plan(
    stack: Stack,
    plan: Plan,
    runtime: Runtime,
    state: StateStore,
    events: Events,
    command: str = "apply",
    force: bool = False,
) -> ApplyResult:
    """Carry out `plan`. The caller holds the stack lock. Raises ApplyError if any step failed.
    `force`: the runtime may take over fields another manager changed (Kubernetes)."""
    started = time.time()
    summary = [{k: v for k, v in c.to_json().items() if k != "private"} for c in plan.actionable]
    revision = state.begin_revision(command, summary)
    result = ApplyResult(revision)
    try:
        _Walk(stack, plan, runtime, state, events, result, force, command).run()
    except Exception as exc:  # a bug: the revision says so, never 'applying'
        state.finish_revision(revision, "failed", f"{type(exc).__name__}: {exc}".splitlines()[0])
        raise
    except BaseException as exc:  # Ctrl-C, SystemExit: the next command repairs what is half done
        state.finish_revision(revision, "interrupted", type(exc).__name__)
        raise
    result.seconds = time.time() - started
    state.finish_revision(revision, "applied" if result.ok else "failed", _error_line(result))
    if not result.ok:
        raise ApplyError(_failure_message(result, command), {**result.failed, **result.skipped})
    return result


class _Walk:
    def __init__(self, stack: Stack, plan: Plan, runtime: Runtime, state: StateStore, events: Events,
                 result: ApplyResult, force: bool = False, command: str = "apply") -> None:
        self.stack, self.plan, self.runtime, self.state, self.events, self.result = (
            stack, plan, runtime, state, events, result)
        self.force = force
        self.command = command
        self.graph = Graph.from_stack(stack)
        self.resources = state.resources()
        self.outputs = known_outputs(stack, runtime, {n: r.outputs for n, r in self.resources.items()})
        self.hashes: dict[str, str | None] = {}  # the resolved config hash of each step, once it starts
        self.started: dict[str, list[str]] = {}  # database -> migrations this apply started
        self._found: dict[str, coordination.Migrations] = {}  # database -> what it has (see _migrations)
        self._unchanged = {c.service for c in plan.changes if c.is_noop}

    def run(self) -> None:
        result = self.result
        pending = {c.service: c for c in self.plan.changes if c.service in self.stack.services}
        running: dict[Future[_Done], Change] = {}

        def blocked_by(name: str) -> str | None:
            return next((d for d in self.graph.dependencies(name) if d in result.failed or d in result.skipped),
                        None)

        def ready(name: str) -> bool:
            busy = {c.service for c in running.values()}
            return all(dep not in pending and dep not in busy for dep in self.graph.dependencies(name))

        with ThreadPoolExecutor(max_workers=max(1, self.runtime.parallelism)) as pool:
            while pending or running:
                for name in list(pending):
                    dep = blocked_by(name)
                    if dep:
                        change = pending.pop(name)
                        if not change.is_noop:
                            result.skipped[name] = f"not applied: {dep} failed"
                            self.events(name, f"skipped: {dep} failed")
                        continue
                    if not ready(name):
                        continue
                    change = pending.pop(name)
                    if change.is_noop:
                        continue
                    self.state.journal(result.revision, name, change.action, "started")
                    running[pool.submit(self._execute, change)] = change
                if not running:
                    continue
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    change = running.pop(fut)
                    try:
                        done = fut.result()
                    except _StepFailed as exc:  # the database is up, its migration failed: record both
                        if exc.applied.outputs is not None:
                            self.outputs[change.service] = exc.applied.outputs
                        self._found.pop(change.service, None)
                        res = self._record(change, exc.applied, exc.deployment, "applied")
                        if exc.closed:
                            coordination.settle(res, "complete", exc.closed)
                            self.state.put_resource(res)
                        self._failed(change, str(exc))
                        continue
                    except _NotStarted as exc:  # refused before anything changed: its record stays as it is
                        self._failed(change, str(exc), record=False)
                        continue
                    except Exception as exc:  # one step's failure; the others go on
                        self._failed(change, _message(exc))
                        continue
                    self._succeeded(change, done)
        for change in self.plan.changes:
            if change.action == "delete":
                self._delete(change)
        self._found.clear()  # the walk is over: read afresh
        if self.command != "rollback":
            self._finish_migrations()
        elif not self.result.failed and not self.result.skipped:  # the schema too, when asked and no user is left
            self._roll_back_schemas()

    # ------------------------------------------------------------------------------------ one step
    def _execute(self, change: Change) -> _Done:
        """One step, in a worker thread (no state writes here)."""
        svc = self.stack.services[change.service]
        prior = self.resources.get(svc.name)
        self._await_dependencies(svc.name)
        if change.action == "rollback":
            dep = deployment_from_config(svc.name, svc.kind, change.config, self.outputs)
        else:
            dep = deployment(svc, change.config.get("release"), self.outputs, service_schemas(self.stack, svc))
        dep.release = change.release
        self.hashes[svc.name] = dep.config_hash
        for db, version in dep.schema.items():  # never start a release on a version schema that is gone
            db_svc = self.stack.services.get(db)
            if db_svc is None or db_svc.postgres is None or db_svc.postgres.migrations is None:
                continue
            try:
                coordination.check_start(self._migrations(db), svc.name, version)
            except SymphonyError as exc:
                raise _NotStarted(str(exc)) from None
        if svc.postgres is not None and prior is not None and change.action != "replace" and \
                prior.config.get("version") not in (None, svc.postgres.version):
            raise PlanError(f"{svc.name}: changing postgres.version in place is not supported",
                            fix="set it back; upgrade with a backup and restore into a new service")
        step = Step(svc.name, svc, change.action, dep, prior, change.private, self.result.revision, self.force)
        applied = self.runtime.apply_service(step, self.events)
        if svc.postgres is None or svc.postgres.migrations is None:
            return _Done(applied, dep, [])
        migrator = self.runtime.migrator(svc.name, svc.postgres, applied.outputs)
        found = coordination.status(self.stack, svc.name, migrator, prior)
        try:
            started = coordination.expand(self.stack, svc.name, migrator, prior, self.events, found)
        except Exception as exc:
            raise _StepFailed(exc, applied, dep, coordination.closed_by_failed_start(found, migrator)) from exc
        return _Done(applied, dep, started, found.migrations)

    def _await_dependencies(self, name: str) -> None:
        """A dependency with nothing to change may still be starting: a database the agent restarted after
        a crash replays its WAL before it takes connections. Its users wait while it is `starting`, as they
        would have waited for its own step (found by tests/faults: a setup job into 'connection refused').
        Only those the plan saw starting are watched: the others were up, and nothing of this apply stops
        them."""
        waiting = {d for d in self.graph.dependencies(name) if d in self._unchanged and d in self.plan.starting
                   and self.stack.services[d].kind != "job"}
        if not waiting:
            return
        deadline = time.time() + READY_DEADLINE
        told = False
        while True:
            seen = self.runtime.observe(self.resources)
            late = {d: seen[d].state for d in sorted(waiting) if d in seen and seen[d].state == "starting"}
            if not late:
                return
            if time.time() > deadline:
                raise RuntimeFailure(f"{name} needs {', '.join(late)}, still starting after {READY_DEADLINE:.0f}s",
                                     fix=f"see 'symphony logs {next(iter(late))}'")
            if not told:
                self.events(name, f"waiting for {', '.join(late)} to finish starting")
                told = True
            time.sleep(0.2)

    def _migrations(self, db: str) -> coordination.Migrations:
        """What database `db` has, read once per walk phase: the steps of its users run after its own step
        (which forgets what was read before it), so they all see the same facts."""
        found = self._found.get(db)
        if found is None:
            found = coordination.read(self.stack, db, self.runtime, self.outputs.get(db), self.resources.get(db))
            self._found[db] = found
        return found

    def _succeeded(self, change: Change, done: _Done) -> None:
        name = change.service
        if done.applied.outputs is not None:
            self.outputs[name] = done.applied.outputs
        res = self._record(change, done.applied, done.deployment, "succeeded" if change.kind == "job" else "applied")
        self._found.pop(name, None)  # a database's step changes what it has
        if done.migrations:
            self.started[name] = done.migrations
            coordination.record(res, started=done.migrations, active=done.migrations[-1], files=done.files)
            self.state.put_resource(res)
        self.state.journal(self.result.revision, name, change.action, "done")
        self.result.done.append(name)

    def _failed(self, change: Change, message: str, record: bool = True) -> None:
        name = change.service
        self.result.failed[name] = message
        self.events(name, "failed: " + message.splitlines()[0])
        self.state.journal(self.result.revision, name, change.action, "failed", message)
        if record and change.kind == "job" and name in self.stack.services:
            old = self.resources.get(name)
            self.state.put_resource(Resource(
                name, "job", change.config_hash or self.hashes.get(name), change.release, "failed",
                self.result.revision, change.config, old.outputs if old else {}, private=change.private))

    def _record(self, change: Change, applied: Applied, dep: Deployment, status: str) -> Resource:
        name = change.service
        old = self.resources.get(name)
        config = dict(change.config)
        if change.kind == "postgres" and old is not None:
            config.update({k: v for k, v in old.config.items() if k in MIGRATION_KEYS})
        outputs = applied.outputs
        res = Resource(
            name=name,
            kind=change.kind,
            config_hash=applied.config_hash or dep.config_hash,
            release=applied.release or dep.release,
            status=status,
            revision=self.result.revision,
            config=config,
            outputs={k: v for k, v in outputs.items() if k not in SECRET_OUTPUTS} if outputs is not None
            else (old.outputs if old else {}),
            private=applied.private,
        )
        self.state.put_resource(res)
        self.resources[name] = res
        if change.kind in ("service", "job"):  # what a rollback goes back to
            self.state.record_deployment(self.result.revision, name, res.config_hash, res.release, config,
                                         res.private)
        return res

    def _delete(self, change: Change) -> None:
        name = change.service
        self.state.journal(self.result.revision, name, "delete", "started")
        try:
            self.runtime.apply_service(
                Step(name, None, "delete", None, self.resources.get(name), change.private, self.result.revision,
                     self.force),
                self.events)
        except Exception as exc:
            self._failed(change, _message(exc))
            return
        self.state.remove_resource(name)
        self.resources.pop(name, None)
        self.state.journal(self.result.revision, name, "delete", "done")
        self.result.done.append(name)

    # ------------------------------------------------------------------------------------ migrations
    def _finish_migrations(self) -> None:
        """Contract or undo the migrations of each database, now that the services are (or are not) live."""
        failed = set(self.result.failed) | set(self.result.skipped)
        for name, svc in self.stack.services.items():
            if svc.postgres is None or svc.postgres.migrations is None or name in failed:
                continue
            outputs = self.outputs.get(name)
            if outputs is None:
                continue  # never created: nothing to finish
            migrator = self.runtime.migrator(name, svc.postgres, outputs)
            try:
                outcome = coordination.finish(self.stack, name, migrator, self.resources,
                                              self.started.get(name, []), failed, self.events, self._earlier(name))
            except Exception as exc:  # the contract failed: the migration stays active, state says so
                self.result.failed[name] = f"migration: {_message(exc)}"
                continue
            res = self.resources.get(name)
            if outcome is None or res is None:
                continue
            what, migration = outcome
            coordination.settle(res, what, migration)
            if what == "rollback_failed":
                self.result.failed[name] = f"migration: the rollback of {migration} failed; it stays active " \
                                           "(symphony migrate rollback retries it)"
            self.state.put_resource(res)


    def _earlier(self, db: str) -> set[str | None]:
        """The versions of `db` (None: the plain tables) every recorded release of its users read."""
        return {coordination.version_in(d.config, db) for name in coordination.users(self.stack, db)
                for d in self.state.deployments(name)}

    def _roll_back_schemas(self) -> None:
        """After `symphony rollback`: roll back the open migrations the plan offered (and the user accepted),
        if still no user runs on their version."""
        for entry in self.plan.migrations:
            name, migration = entry["service"], entry["migration"]
            if entry.get("action") != "rollback" or name not in self.stack.services:
                continue
            found = self._migrations(name)
            if found.open != migration:
                self.events(name, f"migration {migration} is no longer open: nothing to roll back")
                continue
            if coordination.schema_rollback(found, self.resources, {}) is None:
                self.events(name, f"migration {migration} is kept: a release runs on it again")
                continue
            spec = self.stack.services[name].postgres
            assert spec is not None
            self.events(name, f"rollback: migration {migration} (nothing uses {found.versions.get(migration)})")
            try:
                self.runtime.migrator(name, spec, self.outputs.get(name)).rollback(migration, self.events)
            except Exception as exc:
                self.result.failed[name] = f"migration: the rollback of {migration} failed: {_message(exc)}"
                continue
            res = self.resources.get(name)
            if res is not None:
                coordination.settle(res, "rolled_back", migration)
                self.state.put_resource(res)
            self.result.done.append(name)


class _StepFailed(Exception):
    """A step whose runtime part succeeded but whose migration failed."""

    def __init__(self, cause: Exception, applied: Applied, dep: Deployment, closed: str | None = None) -> None:
        super().__init__(_message(cause))
        self.applied, self.deployment, self.closed = applied, dep, closed


class _NotStarted(Exception):
    """A step refused before the runtime was asked to do anything."""


def _message(exc: BaseException) -> str:
    """What a step's failure says: a SymphonyError's own words (its fix included), else the bug's type."""
    if isinstance(exc, SymphonyError | _StepFailed):
        return str(exc)
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"


def _error_line(result: ApplyResult) -> str | None:
    return "; ".join(f"{n}: {m.splitlines()[0]}" for n, m in {**result.failed, **result.skipped}.items()) or None


def _failure_message(result: ApplyResult, command: str) -> str:
    what = "rollback" if command == "rollback" else "apply"
    lines = [f"{what} failed ({len(result.failed)} failed, {len(result.skipped)} skipped, {len(result.done)} done):"]
    for name, msg in result.failed.items():
        lines.append(f"  {name}: {msg}")
    for name, msg in result.skipped.items():
        lines.append(f"  {name}: {msg}")
    return "\n".join(lines)
