"""The Runtime protocol: what the planner and the executor need from a place that runs a stack.

The local runtime (supervised processes, a real PostgreSQL) and the Kubernetes runtime implement it.
Everything here is data: a `Deployment` is one service resolved for a runtime (references replaced,
release chosen); an `Observed` is what the runtime sees running.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# Outputs whose values are secret: never printed, logged or stored in plain state.
SECRET_OUTPUTS = frozenset({"password", "url"})

Events = Callable[[str, str], None]
"""An event sink: events(service, message). The CLI renders them as progress."""


@dataclass
class Deployment:
    """One service as it should run: the spec resolved against its dependencies' outputs."""

    name: str
    kind: str  # postgres | service | job
    config_hash: str
    release: str | None = None
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


class Runtime(Protocol):
    """The narrow interface every runtime implements."""

    name: str

    def observe(self, names: list[str] | None = None, volumes: Iterable[str] = ()) -> dict[str, Observed]:
        """What runs now, by service name (services unknown to the runtime are absent)."""

    def release_id(self, source: Path | None, build: list[str] | None) -> str | None:
        """The content address a release of `source` (built by `build`) would get. No side effects."""

    def prepare_release(self, name: str, source: Path | None, build: list[str] | None, events: Events) -> str | None:
        """Snapshot `source` into an immutable release and build it; returns the release id."""

    def known_outputs(self, name: str, spec: Any, remembered: dict[str, str] | None) -> dict[str, str] | None:
        """A postgres service's outputs (secrets included) if they are known without creating anything."""

    def preflight_postgres(self, spec: Any) -> None:
        """Raise a clear error now if a database of this spec could not be run (missing binaries)."""

    def preflight_switch(self) -> None:
        """Raise a clear error now if services with a public port could not be served (no switch)."""

    def ensure_postgres(self, deployment: Deployment, events: Events) -> dict[str, str]:
        """Create or update a database service; returns its outputs (secrets included)."""

    def fleet(self) -> Any:
        """The mechanics of rollouts (a symphony.rollout.Fleet) for this runtime's run services."""

    def run_job(self, deployment: Deployment, events: Events) -> None:
        """Run a job to completion (and keep its schedule); raises RuntimeError_ if it fails."""

    def schedule_job(self, deployment: Deployment, events: Events) -> None:
        """Keep a job's schedule without running it now (after the platform was down)."""

    def remove(self, name: str, kind: str, events: Events) -> None:
        """Stop a service that left the spec. Volumes are kept."""

    def port_conflict(self, port: int, bind: str, owner: str) -> str | None:
        """Why `port` cannot be used by service `owner` (in use by another process), or None."""

    def stop_all(self, events: Events) -> None:
        """Stop everything (down). Volumes and state are kept."""

    def destroy_volumes(self, names: list[str], events: Events) -> list[Path]:
        """Delete the volumes of these services. Only called after the user confirmed."""

    def logs(self, name: str, lines: int) -> list[str]:
        """The last lines of a service's log."""

    def secrets(self) -> list[str]:
        """Secret values this runtime handed out, for redaction."""

    def status_extra(self) -> dict[str, Any]:
        """Runtime-wide facts for `status` (for the local runtime: the agent's pid)."""
