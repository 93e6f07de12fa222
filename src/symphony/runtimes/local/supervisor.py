"""Supervised units: one long-running process (a service or a database) or one job, in asyncio.

A unit starts its process in a session of its own with stdout and stderr appended to its log file,
so the process outlives the agent: a new agent adopts it by pid (checked against its start time).
A crashed service is restarted with exponential backoff; health checks decide `healthy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from symphony.runtimes.local.postgres import clear_stale_lock
from symphony.runtimes.local.procspec import ProcSpec

BACKOFF_MAX = 30.0
HEALTH_INTERVAL = 1.0
HEALTH_INTERVAL_STARTING = 0.1


def process_start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def alive(pid: int, create_time: float | None) -> bool:
    """True if `pid` is the same process we started (not a recycled pid) and not a zombie."""
    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) > 0.01:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


class Unit:
    """One supervised process or job, and its lifecycle."""

    def __init__(self, spec: ProcSpec, on_change: Callable[[], None]) -> None:
        self.spec = spec
        self._on_change = on_change
        self.pid: int | None = None
        self.create_time: float | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.state = "stopped"
        self.restarts = 0
        self.last_exit: int | None = None
        self.started_at: float | None = None
        self.healthy_since: float | None = None
        self.detail: str | None = None
        self.next_run: float | None = None
        self.adopted = False  # a process a previous agent started; true until it first exits
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._health_task: asyncio.Task[None] | None = None
        self._exited = asyncio.Event()
        self._state_changed = asyncio.Event()

    # ---------------------------------------------------------------- process mechanics
    async def _spawn(self) -> None:
        spec = self.spec
        Path(spec.log).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(spec.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        kwargs: dict[str, Any] = {}
        if spec.user and os.geteuid() == 0:
            kwargs.update(user=spec.user, group=_primary_group(spec.user), extra_groups=[])
        try:
            os.write(fd, f"--- symphony: starting {spec.name} ({spec.release or spec.kind}) at {_now()}\n".encode())
            if spec.stale_lock:
                cleared = clear_stale_lock(Path(spec.stale_lock))
                if cleared:
                    os.write(fd, f"--- symphony: {cleared}\n".encode())
            self.proc = await asyncio.create_subprocess_exec(
                *spec.argv,
                cwd=spec.cwd,
                env=spec.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                start_new_session=True,
                **kwargs,
            )
        finally:
            os.close(fd)
        self.pid = self.proc.pid
        self.create_time = process_start_time(self.pid)
        self.started_at = time.time()
        self._exited.clear()

    async def _wait_exit(self) -> int:
        if self.proc is not None:
            rc = await self.proc.wait()
        else:  # adopted: not our child, poll it
            while self.pid and alive(self.pid, self.create_time):
                await asyncio.sleep(0.2)
            rc = -1
        self._exited.set()
        return rc

    def adopt(self, pid: int, create_time: float | None) -> bool:
        if not alive(pid, create_time):
            return False
        self.pid, self.create_time, self.proc = pid, create_time, None
        self.started_at = create_time
        self.adopted = True
        if self.spec.kind != "job":  # at once, not when the supervising task first runs
            self.state = "starting" if self.spec.health else "running"
        return True

    def _signal(self, sig: int) -> None:
        if self.pid is None or not alive(self.pid, self.create_time):
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self.spec.signal_group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)

    # ---------------------------------------------------------------- lifecycle
    def start(self, adopted: bool = False) -> None:
        self._stopping = False
        loop = self._run_job if self.spec.kind == "job" else self._supervise
        self._task = asyncio.create_task(loop(adopted))

    async def _supervise(self, adopted: bool) -> None:
        backoff = 0.5
        while not self._stopping:
            if not adopted:
                try:
                    await self._spawn()
                except OSError as exc:
                    self._set_state("failed", f"cannot start {self.spec.argv[0]}: {exc.strerror or exc}")
                    await self._sleep(backoff)
                    backoff = min(BACKOFF_MAX, backoff * 2)
                    continue
            adopted = False
            self.healthy_since = None
            self._set_state("starting" if self.spec.health else "running")
            self._health_task = asyncio.create_task(self._health_loop())
            rc = await self._wait_exit()
            self._health_task.cancel()
            self.adopted = False
            self.last_exit = rc
            if self._stopping:
                break
            ran_for = time.time() - (self.started_at or time.time())
            if ran_for > 60:
                backoff = 0.5
            self.restarts += 1
            self._set_state("failed", f"exited with code {rc}; restarting in {backoff:.1f}s")
            await self._sleep(backoff)
            backoff = min(BACKOFF_MAX, backoff * 2)
        self._set_state("stopped")

    async def _run_job(self, adopted: bool) -> None:
        if not adopted:
            try:
                await self._spawn()
            except OSError as exc:
                self.last_exit = 127
                self._set_state("failed", f"cannot start {self.spec.argv[0]}: {exc.strerror or exc}")
                return
        self._set_state("running")
        rc = await self._wait_exit()
        self.last_exit = rc
        if self._stopping:
            self._set_state("stopped")
        elif rc == 0:
            self._set_state("succeeded")
        else:
            self._set_state("failed", f"exited with code {rc}")

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop_requested(), timeout=seconds)

    async def _stop_requested(self) -> None:
        while not self._stopping:
            await asyncio.sleep(0.05)

    async def _health_loop(self) -> None:
        from symphony.runtimes.local.health import check

        failures = 0
        while True:
            ok = await check(self.spec)
            if ok:
                failures = 0
                if self.healthy_since is None:
                    self.healthy_since = time.time()
                if self.state != "healthy":
                    self._set_state("healthy")
            elif self.state == "healthy":
                failures += 1
                if failures >= 3:
                    self.healthy_since = None
                    self._set_state("unhealthy", "health check failing")
            await asyncio.sleep(HEALTH_INTERVAL if self.state == "healthy" else HEALTH_INTERVAL_STARTING)

    async def stop(self) -> None:
        """Graceful stop: the stop signal, `stop_grace` seconds, then SIGKILL."""
        self._stopping = True
        if self._health_task:
            self._health_task.cancel()
        if self.pid is not None and self.state not in ("stopped", "succeeded") or self._running():
            self._signal(getattr(signal, self.spec.stop_signal))
            deadline = time.time() + self.spec.stop_grace
            while self._running() and time.time() < deadline:
                await asyncio.sleep(0.05)
            if self._running():
                self._signal(signal.SIGKILL)
                while self._running():
                    await asyncio.sleep(0.05)
        if self._task:
            with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                await asyncio.wait_for(self._task, timeout=5)
        self.state = "stopped"
        self._on_change()

    def _running(self) -> bool:
        if self.pid is None:
            return False
        if self.proc is not None:
            return self.proc.returncode is None
        return alive(self.pid, self.create_time)

    def _set_state(self, state: str, detail: str | None = None) -> None:
        self.state = state
        self.detail = detail
        self._state_changed.set()
        self._on_change()

    async def wait_for(self, states: set[str], deadline: float) -> str:
        """Wait until the unit is in one of `states`, has failed, or the deadline passed."""
        while time.time() < deadline:
            if self.state in states or (self.state == "failed" and "failed" not in states):
                return self.state
            await self.wait_change(max(0.01, deadline - time.time()))
        return self.state

    async def wait_change(self, timeout: float) -> None:
        """Wait until the unit's state next changes, or `timeout` seconds passed."""
        self._state_changed.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._state_changed.wait(), timeout=timeout)

    async def finished(self) -> None:
        if self._task:
            await asyncio.shield(self._task)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.spec.kind,
            "state": self.state,
            "pids": [self.pid] if self.pid and self._running() else [],
            "restarts": self.restarts,
            "config_hash": self.spec.config_hash,
            "release": self.spec.release,
            "url": self.spec.url,
            "detail": self.detail,
            "last_exit": self.last_exit,
            "started_at": self.started_at,
            "next_run": self.next_run,
        }


def _primary_group(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
