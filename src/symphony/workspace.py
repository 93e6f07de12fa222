"""A Workspace: one stack folder with its spec, its state and its runtime. The library's front door.

    from symphony import Workspace
    ws = Workspace.open("examples/campsite")
    plan = ws.plan()
    ws.apply(plan)

Every command of the CLI is a method here; the CLI only parses arguments and renders.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from symphony import coordination
from symphony.errors import SymphonyError, UsageError
from symphony.graph import Graph
from symphony.plan import Change, Plan, make_plan
from symphony.runtimes import open_runtime
from symphony.runtimes.base import Events, Observed, Runtime
from symphony.spec import Stack, load_stack
from symphony.state import Revision, StackLock, StateStore

if TYPE_CHECKING:
    from symphony.apply import ApplyResult


def _quiet(service: str, message: str) -> None:
    pass


@dataclass
class ServiceStatus:
    name: str
    kind: str
    state: str
    release: str | None = None
    revision: int | None = None
    url: str | None = None
    pids: list[int] = field(default_factory=list)
    restarts: int = 0
    detail: str | None = None
    instances: list[dict[str, Any]] = field(default_factory=list)
    last_rollout: dict[str, Any] | None = None  # the last rollout if it was rolled back

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Workspace:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.home = stack.root / ".symphony"  # state and lock live here for every runtime
        self.runtime: Runtime = open_runtime(stack)
        self._state: StateStore | None = None

    @classmethod
    def open(cls, path: str | Path = ".", runtime: str | None = None) -> Workspace:
        """The stack at `path`; `runtime` (local or kubernetes) overrides the spec's `runtime:`."""
        stack = load_stack(path)
        if runtime is not None and runtime != stack.runtime:
            stack = stack.model_copy(update={"runtime": runtime})
        return cls(stack)

    @property
    def state(self) -> StateStore:
        if self._state is None:
            self._state = StateStore(self.home / "state.db")
        return self._state

    def lock(self, command: str) -> StackLock:
        return StackLock(self.home / "lock", command)

    def close(self) -> None:
        if self._state is not None:
            self._state.close()

    # ------------------------------------------------------------------ plan / apply
    def _check_targets(self, targets: list[str] | None) -> None:
        for name in targets or []:
            if name not in self.stack.services:
                raise UsageError(
                    f"--target {name}: no such service in {self.stack.file}",
                    fix=f"choose one of: {', '.join(self.stack.services)}",
                )

    def plan(self, targets: list[str] | None = None, events: Events = _quiet) -> Plan:
        self._check_targets(targets)
        self.runtime.check()
        resources = self.state.resources()
        scope = self.graph().closure(targets) if targets else set(self.stack.services)
        observed = self._settled(resources, scope, self.runtime.observe(resources, scope), events)
        return make_plan(self.stack, resources, observed, self.runtime, targets)

    def _settled(self, resources: dict[str, Any], scope: set[str], observed: dict[str, Any],
                 events: Events) -> dict[str, Any]:
        """A database with migrations that is still starting (the agent restarting it after a crash, its
        WAL replayed) cannot say which migrations it has, and a plan made then would leave pending ones
        out (found by bench/faults.py: a first `up` killed before its migrations; the next `up` planned
        no migration and its setup job was refused). Wait for it, up to READY_DEADLINE."""
        from symphony.apply import READY_DEADLINE

        def late(seen: dict[str, Any]) -> list[str]:
            return sorted(n for n, o in seen.items() if n in scope and o.state == "starting"
                          and (svc := self.stack.services.get(n)) is not None and svc.postgres is not None
                          and svc.postgres.migrations is not None)

        waiting, deadline = late(observed), time.time() + READY_DEADLINE
        for name in waiting:
            events(name, "still starting: waiting for it before planning")
        while waiting and time.time() < deadline:
            time.sleep(0.2)
            observed = self.runtime.observe(resources, scope)
            waiting = late(observed)
        return observed

    def apply(self, plan: Plan | None = None, targets: list[str] | None = None, events: Events = _quiet,
              command: str = "apply") -> tuple[Plan, ApplyResult | None]:
        """Plan (unless given) and apply under the stack lock. Returns the plan and the result."""
        with self.lock(command):
            if plan is None:
                plan = self.plan(targets, events)
            if not plan.has_changes:
                return plan, None
            return plan, self.execute(plan, events, command)

    def execute(self, plan: Plan, events: Events = _quiet, command: str = "apply", force: bool = False) -> ApplyResult:
        """Carry out a plan; the caller holds the lock. `force`: take over fields another field manager
        owns (where the runtime has them: Kubernetes). Raises ApplyError if a step failed."""
        from symphony.apply import apply_plan  # only commands that change something need the executor

        return apply_plan(self.stack, plan, self.runtime, self.state, events, command, force)

    def unhealthy(self) -> dict[str, str]:
        """Services that are not healthy and jobs that did not succeed, with the reason."""
        bad = {}
        for st in self.status():
            ok = {"postgres": ("healthy",), "service": ("healthy", "running"), "job": ("succeeded", "running")}
            if st.state not in ok[st.kind]:
                bad[st.name] = st.detail or st.state
        return bad

    def rollback_plan(self, service: str, to: int | None = None) -> tuple[Plan, int]:
        """The plan of `symphony rollback`: `service` at the release and config an earlier revision
        applied, and, when no user is left on the newer version of a database, the offer to roll its open
        migration back (`Plan.migrations` entries with action 'rollback'). Refuses (PlanError, nothing
        changed) a release whose version schema no longer exists. Returns it and the revision gone back to."""
        svc = self.stack.services.get(service)
        if svc is None or svc.kind not in ("service", "job"):
            raise UsageError(f"{service!r} is not a service or job of {self.stack.file}",
                             fix="rollback works on services with run: and on jobs")
        history = self.state.deployments(service)
        resources = self.state.resources()
        current = resources.get(service)
        if to is not None:
            target = next((d for d in history if d.revision <= to), None)
            if target is None:
                raise UsageError(f"{service} had no deployment at or before revision {to}",
                                 fix="see 'symphony history' for the revisions")
        else:
            now = (current.config_hash, current.release) if current else (None, None)
            target = next((d for d in history if (d.config_hash, d.release) != now), None)
            if target is None:
                raise UsageError(f"no earlier release of {service} to roll back to",
                                 fix="see 'symphony history'")
        self.runtime.check_release(service, target.release)
        change = Change(service, svc.kind, "rollback",
                        [f"back to revision {target.revision} (release {target.release})"],
                        config_hash=target.config_hash, release=target.release, config=target.config,
                        private=target.private)
        plan = Plan(self.stack.name, [change])
        for db, db_svc in self.stack.services.items():
            if db_svc.postgres is None or db_svc.postgres.migrations is None:
                continue
            found = self._migrations(db, resources.get(db))
            want = coordination.version_in(target.config, db)
            if want is not None:
                coordination.check_rollback(found, service, target.release, target.revision, want)
            if coordination.version_of(current, db) is None:
                continue  # this rollback does not move a user of db
            offer = coordination.schema_rollback(found, resources, {service: want})
            if offer is not None:
                plan.migrations.append(offer)
            else:
                win = coordination.window(self.stack, found, resources)
                if win is not None:
                    change.reasons.append(win.line())
        return plan, target.revision

    def rollback(self, service: str, to: int | None = None, events: Events = _quiet,
                 schema: Callable[[Plan], bool] = lambda _plan: False) -> tuple[int, int]:
        """Roll `service` out at the release and config an earlier revision applied (zero downtime): a
        one-change plan through the same walk as every apply. `schema(plan)` is shown the plan and says
        whether to roll back the open migrations it offers to (`plan.migrations`) too.

        Returns (the new revision, the revision rolled back to). Raises ApplyError (the current release
        keeps serving) if the earlier release does not become healthy.
        """
        with self.lock("rollback"):
            plan, back_to = self.rollback_plan(service, to)
            if not schema(plan):
                plan.migrations = []
            result = self.execute(plan, events, "rollback")
            return result.revision, back_to

    def _migrations(self, db: str, res: Any) -> coordination.Migrations:
        return coordination.read(self.stack, db, self.runtime, self.outputs(db) if res is not None else None, res)

    def windows(self) -> list[coordination.Window]:
        """The open migrations: which versions are live, which releases use which, until when."""
        resources = self.state.resources()
        out = []
        for db, svc in self.stack.services.items():
            if svc.postgres is None or svc.postgres.migrations is None or db not in resources:
                continue
            win = coordination.window(self.stack, self._migrations(db, resources[db]), resources)
            if win is not None:
                out.append(win)
        return out

    # ------------------------------------------------------------------ databases: migrations and backups
    def database(self, service: str | None, need_migrations: bool = False) -> tuple[str, Any, dict[str, str]]:
        """(name, postgres spec, outputs incl. secrets) of a database service that exists."""
        dbs = [n for n, s in self.stack.services.items() if s.postgres is not None
               and (s.postgres.migrations is not None or not need_migrations)]
        if not dbs:
            what = "with migrations " if need_migrations else ""
            raise UsageError(f"no postgres service {what}in {self.stack.file}",
                             fix="set postgres.migrations: ./migrations" if need_migrations else "add a postgres service")
        if service is None:
            if len(dbs) != 1:
                what = "with migrations " if need_migrations else ""
                raise UsageError(f"name the database service {what}(found: {', '.join(dbs) or 'none'})")
            service = dbs[0]
        if service not in dbs:
            raise UsageError(f"{service!r} is not a postgres service" + (" with migrations" if need_migrations else ""),
                             fix=f"choose one of: {', '.join(dbs) or 'none'}")
        spec = self.stack.services[service].postgres
        outputs = self.outputs(service)
        if outputs is None:
            raise UsageError(f"{service} has not been created yet", fix="run symphony up first")
        return service, spec, outputs

    def migrate(self, action: str, service: str | None = None, events: Events = _quiet) -> Any:
        """By hand: `status` (each migration's state), `start` (expand what is pending, backup first),
        `complete` (contract the active one) or `rollback` (undo it). Returns the rows (status) or the
        names touched."""
        name, spec, outputs = self.database(service, need_migrations=True)
        migrator = self.runtime.migrator(name, spec, outputs)
        with self.lock(f"migrate {action}") if action != "status" else contextlib.nullcontext():
            res = self.state.resource(name)
            found = coordination.status(self.stack, name, migrator, res)
            if not found.known:
                raise UsageError(f"{name} is not running: its migrations cannot be read or changed now",
                                 fix="symphony up first")
            if action == "status":
                return coordination.rows(self.stack, found)
            if action == "start":
                started = coordination.expand(self.stack, name, migrator, res, events, found)
                if res is not None and started:
                    coordination.record(res, started=started, active=started[-1], files=found.migrations)
                    self.state.put_resource(res)
                return started
            active = found.active
            if active is None:
                return []
            coordination.check_by_hand(self.stack, found, self.state.resources(), action)
            if action == "complete":
                if found.states.get(active) != "active":
                    raise UsageError(f"migration {active} is {found.states.get(active)} (a crash interrupted its "
                                     "start, or its undo failed): completing it could drop data still needed",
                                     fix="symphony migrate start resumes it; symphony migrate rollback undoes it")
                migrator.complete(active, events)
            else:
                migrator.rollback(active, events)
            if res is not None:
                coordination.settle(res, "complete" if action == "complete" else "rolled_back", active)
                self.state.put_resource(res)
            return [active]

    def backup(self, service: str | None) -> list[str]:
        name, spec, outputs = self.database(service)
        with self.lock("backup"):
            return self.runtime.backup(name, spec, outputs)

    def restore(self, service: str | None, backup_id: str) -> list[str]:
        name, spec, outputs = self.database(service)
        with self.lock("restore"):
            return self.runtime.restore(name, spec, outputs, backup_id)

    # ------------------------------------------------------------------ lifecycle
    def down(self, events: Events = _quiet) -> None:
        with self.lock("down"):
            resources = self.state.resources()
            stopped = self.runtime.stop_all(events, resources)
            with self.state.transaction():
                for name in set(stopped):
                    res = resources[name]
                    res.status = "stopped"
                    self.state.put_resource(res)
            rev = self.state.begin_revision("down", [])
            self.state.finish_revision(rev, "applied")

    def destroy(self, events: Events = _quiet) -> list[str]:
        """Stop everything and delete the volumes, releases and logs. The history stays."""
        with self.lock("destroy"):
            resources = self.state.resources()
            names = [n for n, r in resources.items() if r.kind == "postgres"]
            names += [n for n, s in self.stack.services.items() if s.kind == "postgres" and n not in names]
            removed = self.runtime.destroy(events, resources)
            rev = self.state.begin_revision("destroy", [{"service": n, "action": "destroy"} for n in names])
            with self.state.transaction():
                for name in self.state.resources():
                    self.state.remove_resource(name)
            self.state.finish_revision(rev, "applied")
            return removed

    def volumes(self) -> list[str]:
        """What destroy deletes: volume folders (local) or volume claims (kubernetes)."""
        return self.runtime.volumes(self.state.resources())

    # ------------------------------------------------------------------ reading
    def status(self, observed: dict[str, Observed] | None = None) -> list[ServiceStatus]:
        observed = self.runtime.observe(self.state.resources()) if observed is None else observed
        resources = self.state.resources()
        out = []
        names = list(self.stack.services) + [n for n in resources if n not in self.stack.services]
        for name in names:
            svc = self.stack.services.get(name)
            res = resources.get(name)
            obs = observed.get(name)
            kind = svc.kind if svc else (res.kind if res else "service")
            state = obs.state if obs else "stopped"
            if kind == "job" and (obs is None or obs.state == "stopped") and res is not None:
                state = res.status  # succeeded / failed, remembered from its last run
            if res is None and (obs is None or not obs.is_up):
                state = "not created" if kind != "job" else "never ran"
            url = obs.url if obs and obs.is_up else None
            out.append(
                ServiceStatus(
                    name=name,
                    kind=kind,
                    state=state,
                    release=(obs.release if obs and obs.release else (res.release if res else None)),
                    revision=res.revision if res else None,
                    url=url,
                    pids=obs.pids if obs else [],
                    restarts=obs.restarts if obs else 0,
                    detail=obs.detail if obs else None,
                    instances=obs.instances if obs else [],
                    last_rollout=self._last_rollout(name) if kind == "service" else None,
                )
            )
        return out

    def _last_rollout(self, name: str) -> dict[str, Any] | None:
        last = self.state.last_outcome(name)
        if last is None or last[2] != "failed":
            return None
        revision, action, _, detail = last
        return {"status": "rolled back", "revision": revision, "action": action,
                "reason": (detail or "").splitlines()[0] if detail else None, "detail": detail}

    def outputs(self, name: str) -> dict[str, str] | None:
        svc = self.stack.services[name]
        if svc.postgres is None:
            return None
        res = self.state.resource(name)
        return self.runtime.known_outputs(name, svc.postgres, res.outputs if res else None)

    def history(self, limit: int | None = None) -> list[Revision]:
        return self.state.revisions(limit)

    def graph(self) -> Graph:
        return Graph.from_stack(self.stack)

    def logs(self, name: str, lines: int) -> list[str]:
        if name not in self.stack.services and name not in self.state.resources():
            raise UsageError(f"no service named {name!r}", fix=f"choose one of: {', '.join(self.stack.services)}")
        return self.runtime.logs(name, lines)

    def follow(self, name: str) -> Any:
        """New lines of a service's log as they come."""
        return self.runtime.follow(name)

    def wait_healthy(self, timeout: float = 60.0) -> dict[str, str]:
        """Poll until every service is healthy and every job done, or the deadline; returns what is not."""
        deadline = time.time() + timeout
        bad = self.unhealthy()
        while bad and time.time() < deadline:
            if any(s in ("failed", "stopped", "not created", "never ran") for s in bad.values()):
                break
            time.sleep(0.2)
            bad = self.unhealthy()
        return bad


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


__all__ = ["ServiceStatus", "SymphonyError", "Workspace", "redact"]
