"""Where the local runtime keeps things under a stack's `.symphony/` folder, and how it writes
its private files there."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 107 bytes


@dataclass(frozen=True)
class Layout:
    home: Path  # DIR/.symphony

    @classmethod
    def for_stack(cls, root: Path) -> Layout:
        return cls(root.resolve() / ".symphony")

    @property
    def state_db(self) -> Path:
        return self.home / "state.db"

    @property
    def lock(self) -> Path:
        return self.home / "lock"

    @property
    def agent_dir(self) -> Path:
        return self.home / "agent"

    @property
    def agent_units(self) -> Path:
        """One file per supervised unit (mode 0600): its spec, pid and last job result."""
        return self.agent_dir / "units"

    @property
    def agent_pid(self) -> Path:
        return self.agent_dir / "agent.pid"

    @property
    def agent_log(self) -> Path:
        return self.logs / "agent.log"

    @property
    def socket(self) -> Path:
        """The agent's unix socket; a short fallback under /tmp when the stack's path is too long."""
        path = self.agent_dir / "agent.sock"
        if len(str(path)) <= _MAX_SOCKET_PATH:
            return path
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:16]
        return Path("/tmp") / f"symphony-{os.getuid()}" / f"{digest}.sock"

    def short_socket(self, name: str) -> Path:
        """A unix socket path under the agent's folder, or a short one under /tmp if that is too long."""
        path = self.agent_dir / name
        if len(str(path)) <= _MAX_SOCKET_PATH:
            return path
        digest = hashlib.sha256(f"{self.home}/{name}".encode()).hexdigest()[:16]
        folder = Path("/tmp") / f"symphony-{os.getuid()}"
        folder.mkdir(mode=0o700, exist_ok=True)
        return folder / f"{digest}.sock"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    @property
    def releases(self) -> Path:
        return self.home / "releases"

    @property
    def volumes(self) -> Path:
        return self.home / "volumes"

    def volume(self, name: str) -> Path:
        return self.volumes / name

    @property
    def secrets(self) -> Path:
        return self.home / "secrets"

    def secret(self, name: str) -> Path:
        return self.secrets / name


def write_private_json(path: Path, data: Any) -> None:
    """Write `data` as JSON to `path` atomically (through `NAME.tmp`), readable by this user only (0600)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)
