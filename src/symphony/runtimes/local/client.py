"""Talking to the local agent: one JSON line per request over its unix socket; starting it if needed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

from symphony.errors import RuntimeFailure
from symphony.runtimes.local.layout import Layout

START_TIMEOUT = 15.0


class AgentClient:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def _connect(self, timeout: float | None) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(self.layout.socket))
        except OSError:
            sock.close()
            raise
        return sock

    def running(self) -> bool:
        try:
            self._connect(2.0).close()
        except OSError:
            return False
        return True

    def has_work(self) -> bool:
        """True if the agent is meant to supervise something (so a dead agent must be restarted)."""
        return any(self.layout.agent_units.glob("*.json"))

    def ensure_running(self) -> None:
        """Start the agent in the background unless it answers already (it adopts what still runs)."""
        if self.running():
            return
        self.layout.logs.mkdir(parents=True, exist_ok=True)
        self.layout.agent_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log = os.open(self.layout.agent_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            subprocess.Popen(
                [sys.executable, "-m", "symphony.runtimes.local.agent", str(self.layout.home)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            os.close(log)
        deadline = time.time() + START_TIMEOUT
        while time.time() < deadline:
            if self.running():
                return
            time.sleep(0.05)
        raise RuntimeFailure(
            f"the local agent did not start within {START_TIMEOUT:.0f}s",
            fix=f"see {self.layout.agent_log}",
        )

    def call(self, op: str, timeout: float | None = 30.0, **args: Any) -> dict[str, Any]:
        try:
            sock = self._connect(timeout)
        except OSError as exc:
            raise RuntimeFailure(
                f"cannot reach the local agent at {self.layout.socket}: {exc.strerror or exc}",
                fix="run 'symphony up' to start it",
            ) from exc
        with sock, sock.makefile("rwb") as fh:
            fh.write(json.dumps({"op": op, **args}).encode() + b"\n")
            fh.flush()
            try:
                line = fh.readline()
            except TimeoutError as exc:
                raise RuntimeFailure(f"the local agent did not answer '{op}' within {timeout}s") from exc
        if not line:
            raise RuntimeFailure(f"the local agent closed the connection during '{op}'", fix=f"see {self.layout.agent_log}")
        resp = json.loads(line)
        if "error" in resp:
            raise RuntimeFailure(f"the local agent failed '{op}': {resp['error']}", fix=f"see {self.layout.agent_log}")
        return resp

    def pid(self) -> int | None:
        try:
            return int(self.layout.agent_pid.read_text().strip())
        except (OSError, ValueError):
            return None

    def wait_gone(self, timeout: float = 15.0) -> None:
        """Wait until the agent process has exited (it removes its pid file last)."""
        deadline = time.time() + timeout
        while time.time() < deadline and (self.running() or self._alive(self.pid())):
            time.sleep(0.05)

    @staticmethod
    def _alive(pid: int | None) -> bool:
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
