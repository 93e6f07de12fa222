"""The Runtime protocol: what the engine (plan.py, apply.py) needs from a place that runs a stack,
at the grain of one service.

Terraform's provider protocol is the model. The engine walks the graph; for each service it hands
the runtime a `ServicePlan` (the spec resolved as far as it is known, what was recorded, what the
runtime observed) and gets back a `Planned` change; at apply it hands back a `Step` and gets an
`Applied` result. `Planned.private` is the runtime's own planned data (Kubernetes: the rendered
objects and what to prune): the engine stores and relays it without reading it.

Everything here is data or a protocol; nothing here touches the world. The local runtime (supervised
processes, a real PostgreSQL, the traffic switch) and the Kubernetes runtime implement it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from symphony.spec import PostgresSpec, Service

# Outputs whose values are secret: never printed, logged or stored in plain state.
SECRET_OUTPUTS = frozenset({"password", "url"})
# Keys of a database's recorded config that the engine owns (migration bookkeeping), not the spec.
MIGRATION_KEYS = ("migrations", "migration_active", "migration_since", "migration_digest")

Events = Callable[[str, str], None]
"""An event sink: events(service, message). The CLI renders them as progress."""


@dataclass
class Resource:
    """What the engine remembers of one service: the config it last applied (printable, no secrets),
    its hash, the release, the runtime's private record of it, and its non-secret outputs."""

    name: str
    kind: str
    config_hash: str | None
    release: str | None
    status: str  # applied | failed | succeeded | stopped
    revision: int | None = None
    config: dict[str, Any] = field(default_factory=dict)  # redacted: safe to print
    outputs: dict[str, str] = field(default_factory=dict)  # non-secret outputs only
    updated_at: float = 0.0
    private: dict[str, Any] = field(default_factory=dict)  # the runtime's own record (never printed)


@dataclass
class Desired:
    """One service as the spec wants it, resolved as far as outputs are known before apply."""

    name: str
    kind: str
    config: dict[str, Any]  # printable (references unresolved, no secrets)
    config_hash: str | None  # None: depends on outputs known only after apply
    unknown: list[str]  # the references whose values are not known yet
    sensitive_env: set[str]  # env keys whose values hold secrets
    env: dict[str, str] = field(default_factory=dict, repr=False)  # resolved (secrets too): the known keys


@dataclass
class Deployment:
    """One service as it should run now: the spec resolved against its dependencies' outputs."""

    name: str
    kind: str  # postgres | service | job
    config_hash: str
    release: str | None = None  # what runs: a release id (local), an image (Kubernetes)
    command: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)  # resolved: may hold secrets
    port: int | None = None
    bind: str = "127.0.0.1"
    health: str | None = None
    schedule: str | None = None
    stop_grace: float = 10.0
    postgres: Any = None  # PostgresSpec for kind == "postgres"
    replicas: int = 1
    rollout: dict[str, Any] = field(default_factory=dict)  # symphony.rollout.Policy's fields
    schema: dict[str, str] = field(default_factory=dict)  # database service -> version schema it reads


@dataclass
class Observed:
    """What a runtime sees of one service right now."""

    name: str
    kind: str
    state: str  # starting | running | healthy | unhealthy | failed | stopped | succeeded | missing
    config_hash: str | None = None
    release: str | None = None
    pids: list[int] = field(default_factory=list)
    restarts: int = 0
    url: str | None = None
    detail: str | None = None
    volume: Path | None = None
    volume_exists: bool | None = None
    last_exit: int | None = None
    next_run: float | None = None
    instances: list[dict[str, Any]] = field(default_factory=list)  # a run service's instances

    @property
    def is_up(self) -> bool:
        return self.state in ("starting", "running", "healthy", "unhealthy")


@dataclass
class ServicePlan:
    """What the engine asks a runtime to plan: one service."""

    service: Service
    desired: Desired
    prior: Resource | None
    observed: Observed | None
    release: str | None  # the content address of its source (None: no source)


@dataclass
class Planned:
    """A runtime's plan of one service: the action with its reasons, and data only it reads."""

    action: str  # create | replace | update | restart | start | run | schedule | migrate | delete | noop
    reasons: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    config_hash: str | None = None  # what will be recorded as applied (None: the desired config's hash)
    release: str | None = None  # what will run (None: the source's content address)
    private: dict[str, Any] = field(default_factory=dict)
    busy: bool = False  # running now (a job on its schedule): left be, the engine adds no job rules


@dataclass
class Step:
    """One change the engine asks a runtime to carry out."""

    name: str  # the service's name
    service: Service | None  # None: the service left the spec (a delete)
    action: str
    deployment: Deployment | None  # None for a delete
    prior: Resource | None
    private: dict[str, Any]  # as the runtime planned it
    revision: int
    force: bool = False  # take over fields another manager changed (where the runtime has managers)


@dataclass
class Applied:
    """What a runtime reports of a finished step."""

    config_hash: str | None = None  # None: the deployment's
    release: str | None = None  # None: the deployment's
    outputs: dict[str, str] | None = None  # a database's outputs (secrets included), else None
    private: dict[str, Any] = field(default_factory=dict)


@dataclass
class Description:
    """A runtime's own facts for `status`: JSON fields, and one line for people."""

    fields: dict[str, Any]
    line: str


class Migrator(Protocol):
    """How migration steps of one database run on a runtime (in-process locally, Jobs on Kubernetes).
    When they run is the engine's business (symphony.coordination)."""

    recorded: bool
    """True: the database cannot be asked from here, so the engine's records are the facts
    (Kubernetes). False: the database is asked, and `status` None means it is not running now."""

    def status(self) -> list[dict[str, Any]] | None:
        """Every migration with its `name`, `state` (pending, starting, active, complete, rolled_back,
        failed) and `version_schema`, as the database says; None when it cannot say now."""

    def start(self, names: list[str], events: Events, restart: str | None = None) -> None:
        """Back up, repair a crashed start, roll back `restart` (the open migration, whose file changed) or
        else complete the open migration, then start `names` in order (all but the last are completed
        too). Raises SymphonyError naming the migration that failed."""

    def complete(self, name: str, events: Events) -> None:
        """Contract the active migration `name`."""

    def rollback(self, name: str, events: Events) -> None:
        """Undo migration `name` if it is the active (or half-started, or failed) one; else nothing."""


class Runtime(Protocol):
    """The one interface between the engine and a place that runs a stack."""

    name: str
    parallelism: int  # how many steps it takes at once

    def check(self) -> None:
        """Raise a clear error now for what the runtime cannot run, before it is contacted."""

    def observe(self, recorded: dict[str, Resource] | None = None, names: set[str] | None = None
                ) -> dict[str, Observed]:
        """What runs now, by service name (services unknown to the runtime are absent). `names`: a plan's
        scope (the runtime may read ahead what it needs to plan them); None: everything (status)."""

    def known_outputs(self, name: str, spec: PostgresSpec, remembered: dict[str, str] | None) -> dict[str, str] | None:
        """A database service's outputs (secrets included) if they are known without creating anything."""

    def plan_service(self, request: ServicePlan) -> Planned:
        """Plan one service against what was recorded and what runs. Makes no change. May raise PlanError
        for what would fail half-way (a taken port, missing binaries, a field the runtime cannot change)."""

    def plan_delete(self, name: str, prior: Resource | None) -> Planned | None:
        """Plan the removal of a service that left the spec (None: nothing of it is left)."""

    def leftovers(self, recorded: dict[str, Resource]) -> list[str]:
        """Services the runtime runs for this stack that no record names (a crash before recording)."""

    def apply_service(self, step: Step, events: Events) -> Applied:
        """Carry out one planned change (a rollout, a job run, a database update, a delete, a rollback).
        Raises SymphonyError (RolledBack for a rollout that was undone) when it fails."""

    def check_release(self, name: str, release: str | None) -> None:
        """Raise UsageError now if `release` (an earlier revision's, for a rollback) cannot run here."""

    def migrator(self, name: str, spec: PostgresSpec, outputs: dict[str, str] | None) -> Migrator:
        """The migration steps of database service `name`."""

    def backup(self, name: str, spec: PostgresSpec, outputs: dict[str, str]) -> list[str]:
        """Back up every database of a database service now; returns what was written."""

    def restore(self, name: str, spec: PostgresSpec, outputs: dict[str, str], backup_id: str) -> list[str]:
        """Restore a backup into a running database service; returns the databases restored."""

    def stop_all(self, events: Events, recorded: dict[str, Resource] | None = None) -> list[str]:
        """Stop everything (down), keeping volumes. Returns the services whose record must say 'stopped'
        (a runtime that observes stopped services by itself returns none)."""

    def volumes(self, recorded: dict[str, Resource] | None = None) -> list[str]:
        """What holds data: what `destroy` deletes."""

    def destroy(self, events: Events, recorded: dict[str, Resource] | None = None) -> list[str]:
        """Stop and delete everything, volumes included (the user confirmed). Returns the volumes deleted."""

    def logs(self, name: str, lines: int) -> list[str]:
        """The last lines of a service's log."""

    def follow(self, name: str) -> Iterator[str]:
        """New lines of a service's log as they come (until interrupted)."""

    def secrets(self) -> list[str]:
        """Secret values this runtime handed out, for redaction."""

    def describe(self) -> Description:
        """Runtime-wide facts for `status`."""
