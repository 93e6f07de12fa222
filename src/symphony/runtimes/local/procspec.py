"""What the agent runs (ProcSpec), shared by the CLI side and the agent; the names of a service's
instances (SERVICE.N); a free port to run it on; and reading a log's tail.

Kept apart from the supervisor so the CLI never imports asyncio or psutil just to plan.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ProcSpec:
    """What to run. Sent by the CLI to the agent as JSON and persisted by the agent (mode 0600)."""

    name: str
    kind: str  # service | postgres | job
    argv: list[str]
    cwd: str
    log: str
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    port: int | None = None
    bind: str = "127.0.0.1"
    health: dict[str, Any] | None = None  # {"http": "/healthz"} or {"postgres": DSN}
    config_hash: str | None = None
    release: str | None = None
    url: str | None = None
    stop_signal: str = "SIGTERM"
    stop_grace: float = 10.0
    schedule: str | None = None
    service: str | None = None  # for an instance (name "api.3"): the service it belongs to
    signal_group: bool = True  # stop signals go to its process group; False: to the leader only (a
    # postmaster shuts its own backends down, in order)
    stale_lock: str | None = None  # a PostgreSQL data folder whose postmaster.pid a killed run leaves behind:
    # cleared before each start when no postmaster holds it (see postgres.clear_stale_lock)

    def identity(self) -> tuple[Any, ...]:
        """What makes two specs the same process: a change here means a restart."""
        return (tuple(self.argv), self.cwd, tuple(sorted(self.env.items())), self.user, self.port)

    def instance_identity(self) -> str:
        """identity() without what differs between instances of one service (their private port)."""
        env = tuple(sorted((k, v) for k, v in self.env.items() if k not in ("PORT", "SYMPHONY_INSTANCE")))
        blob = json.dumps([list(self.argv), self.cwd, env, self.user], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProcSpec:
        if "signal_group" not in data:  # persisted by an agent from before the field: its postmaster
            data = {**data, "signal_group": data.get("kind") != "postgres"}
        return cls(**data)


def instance_name(service: str, seq: int) -> str:
    """The unit name of a service's instance number `seq`: SERVICE.N."""
    return f"{service}.{seq}"


def instance_seq(name: str) -> int | None:
    """N of an instance named SERVICE.N; None if the name does not end in `.N`."""
    _, dot, seq = name.rpartition(".")
    return int(seq) if dot and seq.isdigit() else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last `lines` lines of a file, cheaply (reads from the end)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            block = min(size, max(4096, lines * 200))
            fh.seek(size - block)
            data = fh.read().decode(errors="replace")
    except OSError:
        return []
    return data.splitlines()[-lines:]
