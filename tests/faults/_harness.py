"""Fault injection on a real stack: the ledger app (tests/fixtures/ledger) as `web` with two replicas
behind the switch, a PostgreSQL with the ledger's migrations, a setup job; a writer that keeps every id
the app acknowledged; kill -9 of any of Symphony's processes at a chosen moment; and the check that the
next `symphony up` converges. Shared by tests/faults/ and bench/faults.py."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
LEDGER = ROOT / "tests" / "fixtures" / "ledger"
MIGRATIONS = ROOT / "tests" / "fixtures" / "ledger_migrations"
SPEC = """\
name: faults
services:
  db:
    postgres:
      databases: [ledger]
      migrations: ./migrations
  setup:
    job: python app.py tally
    source: ./app
    image: registry.example.com/ledger:1
    schema: latest
    depends_on: [db]
    env: {{DATABASE_URL: "${{db.url}}", APP_VERSION: "{version}", TALLY_FILE: "{tally}", RELEASE: "{release}"}}
  web:
    run: {run}
    source: ./app
    image: registry.example.com/ledger:1
    port: {port}
    health: /healthz
    schema: latest
    replicas: 2
    stop_grace: 3s
    depends_on: [setup]
    rollout: {{min_healthy: 1s, healthy_deadline: {deadline}, drain: 1s}}
    env: {{DATABASE_URL: "${{db.url}}", APP_VERSION: "{version}", RELEASE: "{release}"}}
"""
VICTIMS = ("cli", "agent", "postgres", "haproxy", "app", "all")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stack:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        for f in (folder, folder.parent):  # the database's user must reach the volume
            f.chmod(0o755)
        shutil.copytree(LEDGER, folder / "app", ignore=shutil.ignore_patterns("__pycache__"))
        (folder / "migrations").mkdir()
        self.add_migration("01_ledger")
        self.write(version=1)

    # ------------------------------------------------------------------ the spec
    def write(self, version: int, release: str = "a", run: str = "python app.py", deadline: str = "30s") -> None:
        (self.folder / "symphony.yaml").write_text(SPEC.format(port=self.port, version=version, release=release,
                                                               tally=self.folder / "tally.txt", run=run,
                                                               deadline=deadline))

    def add_migration(self, name: str) -> None:
        shutil.copy(MIGRATIONS / f"{name}.yaml", self.folder / "migrations" / f"{name}.yaml")

    # ------------------------------------------------------------------ commands
    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "symphony.cli.main", *args]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), cwd=self.folder, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(*args), cwd=self.folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})

    def ok(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        out = self.run(*args, timeout=timeout)
        if out.returncode != 0:
            raise AssertionError(f"symphony {' '.join(args)}: exit {out.returncode}\n{out.stdout}\n{out.stderr}")
        return out

    def status(self) -> dict[str, Any]:
        return json.loads(self.ok("status", "--json", "--show-secrets").stdout)

    def url(self) -> str:
        return str(self.status()["services"]["db"]["url"])

    # ------------------------------------------------------------------ processes
    @property
    def home(self) -> Path:
        return self.folder / ".symphony"

    def agent_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.home / "agent" / "agent.pid").read_text())
        return None

    def unit_pids(self) -> dict[str, int]:
        """Every process the agent's units record, by unit name (postgres, the switch, app instances)."""
        out: dict[str, int] = {}
        for unit in (self.home / "agent" / "units").glob("*.json"):
            with contextlib.suppress(OSError, ValueError, TypeError):
                proc = json.loads(unit.read_text()).get("proc") or {}
                if proc.get("pid"):
                    out[unit.stem] = int(proc["pid"])
        return out

    def victims(self, which: str, cli: subprocess.Popen[str] | None) -> list[int]:
        units = self.unit_pids()
        pids = {
            "cli": [cli.pid] if cli is not None and cli.poll() is None else [],
            "agent": [p for p in [self.agent_pid()] if p],
            "postgres": [p for n, p in units.items() if n == "db"],
            "haproxy": [p for n, p in units.items() if "switch" in n or "haproxy" in n],
            "app": [p for n, p in units.items() if n.startswith("web")][:1],
        }
        if which == "all":
            return sorted({p for v in pids.values() for p in v})
        return pids[which]

    def processes(self) -> list[psutil.Process]:
        """Live processes that belong to this stack: their command line or working folder is inside it."""
        mine = str(self.folder)
        found = []
        for proc in psutil.process_iter(["pid", "cmdline", "status"]):
            with contextlib.suppress(psutil.Error):
                if proc.info["status"] == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
                    continue
                cmd = " ".join(proc.info["cmdline"] or [])
                if mine in cmd or str(proc.cwd()).startswith(mine):
                    found.append(proc)
        return found

    def kill_all(self) -> None:
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                proc.kill()

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.run("down", timeout=120)
        self.kill_all()
        shutil.rmtree(self.folder, ignore_errors=True)

    # ------------------------------------------------------------------ checks
    def converged(self, acked: list[int]) -> dict[str, Any]:
        """After a fault: one `symphony up`, then the promises, each checked. Returns what was found."""
        started = time.time()
        up = self.run("up", timeout=600)
        found: dict[str, Any] = {"up_exit": up.returncode, "converge_s": round(time.time() - started, 1)}
        if up.returncode != 0:
            found["up_output"] = (up.stdout + up.stderr)[-1500:]
            with contextlib.suppress(OSError):
                found["db_log"] = (self.home / "logs" / "db.log").read_text()[-2000:]
            return found
        found["plan_exit"] = self.run("plan", "--detailed-exitcode").returncode
        try:
            found["serving"] = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            found["serving"] = False
        with psycopg.connect(self.url()) as conn:
            present = {r[0] for r in conn.execute("SELECT id FROM public.entries")} if acked else set()
            states = conn.execute("SELECT name, state, version_schema FROM symphony_migrate.migrations "
                                  "ORDER BY position").fetchall()
            schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'public\\_%'")}
        found["lost_rows"] = len(set(acked) - present)
        recorded = {v for _, s, v in states if s in ("active", "complete")}
        found["migrations"] = {n: s for n, s, _ in states}
        found["consistent"] = (all(s in ("active", "complete", "rolled_back") for _, s, _ in states)
                               and schemas <= recorded)  # no version schema without its record
        status = self.status()
        known = {self.agent_pid()} | {p for s in status["services"].values() for p in s.get("pids", [])}
        known |= set(self.unit_pids().values())
        orphans = []
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                family = {proc.pid} | {p.pid for p in proc.parents()}
                if not family & known:
                    orphans.append(" ".join(proc.cmdline())[:120])
        found["orphans"] = orphans
        found["ok"] = (found["plan_exit"] == 0 and found["serving"] and found["lost_rows"] == 0
                       and found["consistent"] and not orphans)
        return found


class Writer:
    """POSTs entries in a loop through whatever release serves; keeps every id the app acknowledged."""

    def __init__(self, port: int) -> None:
        self.port, self.acked, self.failed = port, [], 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=3) as client:
            i = 0
            while not self.stop.is_set():
                i += 1
                try:
                    r = client.post(f"http://127.0.0.1:{self.port}/entries",
                                    params={"account": f"w{i}", "amount": f"{i % 100}.25"})
                    if r.status_code == 201:
                        self.acked.append(int(r.json()["id"]))
                    else:
                        self.failed += 1
                except httpx.HTTPError:
                    self.failed += 1
                self.stop.wait(0.02)

    def finish(self) -> list[int]:
        self.stop.set()
        self.thread.join(timeout=10)
        return self.acked


def kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def stack() -> Iterator[Stack]:
    """A fresh fault stack in a temp folder of its own; brought down, its processes killed by pid and the
    folder removed afterwards, even when the test fails. Test modules import it by name."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="symphony-faults-"))
    s = Stack(folder / "stack")
    try:
        yield s
    finally:
        s.destroy()
        shutil.rmtree(folder, ignore_errors=True)
