"""A fake runtime and a fake migrator, in memory, for the engine tests; and the helpers that drive
the engine the way the Workspace does (observe, make_plan, apply_plan) against a real StateStore."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from symphony.apply import ApplyResult, apply_plan
from symphony.diff import diff
from symphony.graph import Graph
from symphony.plan import Plan, make_plan
from symphony.runtimes.base import (
    MIGRATION_KEYS,
    Applied,
    Description,
    Events,
    Observed,
    Planned,
    Resource,
    ServicePlan,
    Step,
)
from symphony.spec import PostgresSpec, Stack, load_stack
from symphony.state import StateStore

Hook = Callable[[Step], None]


class FakeRuntime:
    """A FAKE runtime: the Runtime protocol (symphony.runtimes.base) kept in memory, touching nothing.

    It exists so that the engine's own walk (make_plan, apply_plan, migration coordination) is tested
    apart from any real runtime: what a real runtime does with a step (processes, PostgreSQL,
    Kubernetes objects) is what the contract suite (tests/contract/) checks against every runtime.

    It plans the way a runtime must (create when nothing is recorded, update / run when the recorded
    hash differs, start when nothing runs, noop otherwise), keeps what "runs" in `world`, records
    every step it is given (`steps`) and an ordered `log` of what happened ("begin"/"end" of each
    apply_service, and the migrator's "start"/"complete"/"rollback"). A test intervenes in a step
    through `hooks[service]`, called first in apply_service in the worker thread (raise to fail the
    step, wait on an event or a barrier to prove ordering and overlap)."""

    name = "fake"

    def __init__(self, parallelism: int = 4) -> None:
        self.parallelism = parallelism
        self.world: dict[str, Observed] = {}  # what runs now
        self.envs: dict[str, dict[str, str]] = {}  # the resolved env each service runs with (secrets too)
        self.databases: dict[str, dict[str, str]] = {}  # outputs of the databases created (secrets too)
        self.passwords: dict[str, str] = {}  # the password a database gets when it is created
        self.migrations: dict[str, dict[str, str]] = {}  # database -> migration -> state, as it says
        self.failing_migrations: set[str] = set()  # migrations whose start fails
        self.failing_rollbacks: set[str] = set()  # migrations whose rollback fails
        self.hooks: dict[str, Hook] = {}
        self.steps: list[Step] = []
        self.log: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ what a test reads
    def note(self, *entry: Any) -> None:
        with self._lock:
            self.log.append(entry)

    def step(self, name: str) -> Step:
        """The last step this runtime was given for `name`."""
        found = [s for s in self.steps if _step_name(s) == name]
        assert found, f"no step for {name}; steps: {[_step_name(s) for s in self.steps]}"
        return found[-1]

    def index(self, *entry: Any) -> int:
        return self.log.index(entry)

    # ------------------------------------------------------------------ the protocol
    def check(self) -> None:
        pass

    def observe(self, recorded: dict[str, Resource] | None = None, names: set[str] | None = None
                ) -> dict[str, Observed]:
        return {n: replace(o) for n, o in self.world.items() if names is None or n in names}

    def known_outputs(self, name: str, spec: PostgresSpec, remembered: dict[str, str] | None) -> dict[str, str] | None:
        found = self.databases.get(name)
        return dict(found) if found is not None else None

    def plan_service(self, request: ServicePlan) -> Planned:
        want, prior, obs = request.desired, request.prior, request.observed
        if want.kind == "job" and obs is not None and obs.state == "running":
            return Planned("noop", busy=True)  # running now, on its schedule: leave it be
        private = {"planned_for": want.name, "desired_hash": want.config_hash}
        if prior is None:
            return Planned("run" if want.kind == "job" else "create", [f"new {want.kind}"], private=private)
        if want.config_hash is None:
            action = "run" if want.kind == "job" else "update"
            return Planned(action, [f"uses {', '.join(want.unknown)}, known only after apply"], private=private)
        planned = Planned("noop", private=private)
        if prior.config_hash != want.config_hash:
            planned.action = "run" if want.kind == "job" else "update"
            recorded = {k: v for k, v in prior.config.items() if k not in MIGRATION_KEYS}
            planned.details = diff(recorded, want.config)
            # Like a careless runtime, it also shows the resolved values that changed (secrets too):
            # the engine must redact them.
            shown = {d.split(":")[0] for d in planned.details}
            running = self.envs.get(want.name, {})
            for key, value in sorted(want.env.items()):
                if f"env.{key}" not in shown and running.get(key) != value:
                    planned.details.append(f"env.{key}: {running.get(key)!r} -> {value!r}")
            planned.reasons = ["config changed"]
        if want.kind != "job" and (obs is None or not obs.is_up) and planned.action == "noop":
            planned.action, planned.reasons = "start", ["not running"]
        return planned

    def check_release(self, name: str, release: str | None) -> None:
        pass

    def plan_delete(self, name: str, prior: Resource | None) -> Planned | None:
        if prior is None and name not in self.world:
            return None
        return Planned("delete", ["removed from the spec"], private={"delete": name})

    def leftovers(self, recorded: dict[str, Resource]) -> list[str]:
        return [n for n in self.world if n not in recorded]

    def apply_service(self, step: Step, events: Events) -> Applied:
        name = _step_name(step)
        with self._lock:
            self.steps.append(step)
            self.log.append(("begin", name))
        hook = self.hooks.get(name)
        if hook is not None:
            hook(step)
        if step.action == "delete":
            self.world.pop(name, None)
            self.note("end", name)
            return Applied()
        dep = step.deployment
        assert dep is not None
        outputs = None
        if dep.kind == "postgres":
            outputs = self.databases.get(name) or self._create_database(name, dep.postgres)
        state = {"postgres": "healthy", "service": "running", "job": "succeeded"}[dep.kind]
        self.world[name] = Observed(name, dep.kind, state, config_hash=dep.config_hash, release=dep.release)
        self.envs[name] = dict(dep.env)
        events(name, f"{step.action} done")
        self.note("end", name)
        return Applied(outputs=dict(outputs) if outputs else None,
                       private={"relayed": step.private, "applied_in": step.revision})

    def migrator(self, name: str, spec: PostgresSpec, outputs: dict[str, str] | None) -> FakeMigrator:
        return FakeMigrator(self, name, reachable=outputs is not None)

    def backup(self, name: str, spec: PostgresSpec, outputs: dict[str, str]) -> list[str]:
        return []

    def restore(self, name: str, spec: PostgresSpec, outputs: dict[str, str], backup_id: str) -> list[str]:
        return []

    def stop_all(self, events: Events, recorded: dict[str, Resource] | None = None) -> list[str]:
        for obs in self.world.values():
            obs.state = "stopped"
        return []

    def volumes(self, recorded: dict[str, Resource] | None = None) -> list[str]:
        return sorted(self.databases)

    def destroy(self, events: Events, recorded: dict[str, Resource] | None = None) -> list[str]:
        gone = self.volumes()
        self.world.clear()
        self.databases.clear()
        return gone

    def logs(self, name: str, lines: int) -> list[str]:
        return []

    def follow(self, name: str) -> Iterator[str]:
        return iter(())

    def secrets(self) -> list[str]:
        return [o["password"] for o in self.databases.values()]

    def describe(self) -> Description:
        return Description({"runtime": "fake"}, "fake runtime (in memory)")

    # ------------------------------------------------------------------ inside
    def _create_database(self, name: str, spec: PostgresSpec) -> dict[str, str]:
        password = self.passwords.get(name, f"secret-of-{name}")
        port = str(spec.port or 5432)
        database = spec.databases[0] if spec.databases else "postgres"
        out = {"host": "127.0.0.1", "port": port, "user": spec.user, "password": password, "database": database,
               "url": f"postgresql://{spec.user}:{password}@127.0.0.1:{port}/{database}"}
        self.databases[name] = out
        return out


class FakeMigrator:
    """A FAKE Migrator: the migration states of one database, in the fake runtime's memory. It records
    every call in the runtime's log, so a test sees when the engine expanded, contracted or rolled
    back relative to the services' steps. `status` says None when the database was not reachable
    (the engine then plans from its records), as a real migrator does."""

    recorded = True  # status None: the engine's records say (as on Kubernetes)

    def __init__(self, runtime: FakeRuntime, name: str, reachable: bool) -> None:
        self.runtime, self.name, self.reachable = runtime, name, reachable

    @property
    def states(self) -> dict[str, str]:
        return self.runtime.migrations.setdefault(self.name, {})

    def status(self) -> list[dict[str, Any]] | None:
        if not self.reachable or self.name not in self.runtime.databases:
            return None
        return [{"name": n, "state": s, "version_schema": f"public_{n}"} for n, s in self.states.items()]

    def start(self, names: list[str], events: Events, restart: str | None = None) -> None:
        self.runtime.note("start", self.name, tuple(names))
        for name, state in list(self.states.items()):  # as the real one: the open migration completes first
            if state == "active" and name not in names:
                self.states[name] = "complete"
        for i, migration in enumerate(names):
            if migration in self.runtime.failing_migrations:
                self.states[migration] = "failed"
                from symphony.errors import RuntimeFailure

                raise RuntimeFailure(f"migration {migration} failed")
            self.states[migration] = "complete" if i < len(names) - 1 else "active"

    def complete(self, name: str, events: Events) -> None:
        self.runtime.note("complete", self.name, name)
        self.states[name] = "complete"

    def rollback(self, name: str, events: Events) -> None:
        self.runtime.note("rollback", self.name, name)
        if name in self.runtime.failing_rollbacks:
            from symphony.errors import RuntimeFailure

            raise RuntimeFailure(f"rollback of {name} failed")
        if self.states.get(name) in ("active", "starting", "failed"):
            self.states[name] = "rolled_back"


def _step_name(step: Step) -> str:
    if step.deployment is not None:
        return step.deployment.name
    if step.prior is not None:
        return step.prior.name
    # A delete of something no record names (a leftover): the Step carries no name, only what the
    # runtime planned (as the Kubernetes runtime plans the objects to prune).
    return str(step.private["delete"])


# ---------------------------------------------------------------------- driving the engine
class EventLog:
    """An event sink that keeps what it was told."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, service: str, message: str) -> None:
        with self._lock:
            self.seen.append((service, message))


def write_stack(folder: Path, spec: str, migrations: dict[str, str] | None = None) -> Stack:
    """Write symphony.yaml (and migrations/NAME.yaml, pgroll's format) into `folder`; load it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "symphony.yaml").write_text(textwrap.dedent(spec))
    if migrations is not None:
        (folder / "migrations").mkdir(exist_ok=True)
        for name, text in migrations.items():
            (folder / "migrations" / f"{name}.yaml").write_text(textwrap.dedent(text))
    return load_stack(folder)


def plan(stack: Stack, runtime: FakeRuntime, state: StateStore, targets: list[str] | None = None) -> Plan:
    """What Workspace.plan does: observe the plan's scope, then make the plan."""
    resources = state.resources()
    scope = Graph.from_stack(stack).closure(targets) if targets else set(stack.services)
    return make_plan(stack, resources, runtime.observe(resources, scope), runtime, targets)


def apply(stack: Stack, runtime: FakeRuntime, state: StateStore, targets: list[str] | None = None,
          events: EventLog | None = None) -> tuple[Plan, ApplyResult]:
    """Plan and apply (what Workspace.apply does under the lock)."""
    made = plan(stack, runtime, state, targets)
    return made, apply_plan(stack, made, runtime, state, events or EventLog())
