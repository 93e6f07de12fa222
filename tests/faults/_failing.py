"""Releases and migrations that fail, on the fault stack of _harness.py, under load: a release that
crashes, hangs (never listens), fails its health check, or becomes healthy only after its deadline, and a
migration whose `up` fails half-way through its backfill. One trial of each, with every promise checked;
shared by tests/faults/test_failing_releases.py and bench/faults.py (R3)."""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any

import httpx
import psutil
import psycopg
from _harness import ROOT, Stack

sys.path.insert(0, str(ROOT / "bench"))
import loadgen  # noqa: E402

# kind -> (the release's run command, what the refusal must say)
RELEASES = {
    "crash": ('python -c "raise SystemExit(3)"', "crashed"),
    "hang": ('python -c "import time; time.sleep(3600)"', "did not pass its health check"),
    "unhealthy": ("python app.py unhealthy", "did not pass its health check"),
    "too_slow": ("python -c \"import runpy, time; time.sleep(8); runpy.run_path('app.py', run_name='__main__')\"",
                 "did not pass its health check"),
}
DEADLINE = "4s"
FAILS_HALF_WAY = """
operations:
  - alter_column:
      table: entries
      column: amount
      type: "numeric(12,2)"
      up: "CASE WHEN id = {row} THEN CAST('not a number' AS numeric(12,2)) ELSE CAST(amount AS numeric(12,2)) END"
      down: "CAST(amount AS text)"
"""
SEED_ROWS = 60_000


class Load:
    """bench/loadgen.py's strict counting, in a thread of this process, against one URL."""

    def __init__(self, url: str) -> None:
        self.stop_event = threading.Event()
        self.result: dict[str, Any] = {}
        self.thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self.thread.start()

    def _run(self, url: str) -> None:
        self.result = loadgen.run(url, connections=4, rate=100, duration=None, timeout=5, stop_event=self.stop_event)

    def stop(self) -> dict[str, Any]:
        self.stop_event.set()
        self.thread.join(timeout=30)
        return self.result

    @staticmethod
    def lost(result: dict[str, Any]) -> int:
        return int(result.get("failed", 0)) + int(result.get("non_2xx", 0))


def _serving_release(stack: Stack) -> tuple[bool, int]:
    """Whether the release before the failed one serves, and how many of its instances are healthy."""
    try:
        ok = httpx.get(f"http://127.0.0.1:{stack.port}/entries", timeout=5).status_code == 200
    except httpx.HTTPError:
        ok = False
    web = stack.status()["services"]["web"]
    return ok, sum(1 for i in web["instances"] if i["state"] == "healthy" and i.get("in_rotation", True))


def _stragglers(stack: Stack, known: set[int]) -> list[str]:
    out = []
    for proc in stack.processes():
        with contextlib.suppress(psutil.Error):
            if not ({proc.pid} | {p.pid for p in proc.parents()}) & known:
                out.append(" ".join(proc.cmdline())[:100])
    return out


def _known_pids(stack: Stack) -> set[int]:
    status = stack.status()
    return ({stack.agent_pid()} | set(stack.unit_pids().values())
            | {p for s in status["services"].values() for p in s.get("pids", [])}) - {None}


def failing_release(stack: Stack, kind: str, good_release: str = "a") -> dict[str, Any]:
    """Deploy a release of `kind` under load on a running stack; it must be rolled back by itself with no
    request lost, the old release serving on both instances, nothing of it left running, and the state as
    before (the old spec plans clean)."""
    run, reason = RELEASES[kind]
    stack.write(version=1, release=good_release)
    stack.ok("up", timeout=600)
    load = Load(f"http://127.0.0.1:{stack.port}/entries")
    stack.write(version=1, release=good_release, run=run, deadline=DEADLINE)
    out = stack.run("deploy", timeout=600)
    result = load.stop()
    text = out.stdout + out.stderr
    serving, healthy = _serving_release(stack)
    stragglers = _stragglers(stack, _known_pids(stack))
    stack.write(version=1, release=good_release)
    plan = stack.run("plan", "--detailed-exitcode")
    found = {
        "kind": kind, "deploy_exit": out.returncode, "rolled_back": "rolled back" in text and reason in text,
        "traceback": "Traceback" in text, "requests": result.get("requests", 0), "failed": Load.lost(result),
        "connect_errors": result.get("connect_errors", 0), "old_serving": serving, "old_healthy": healthy,
        "stragglers": stragglers, "plan_exit": plan.returncode,
    }
    found["ok"] = (out.returncode == 1 and found["rolled_back"] and not found["traceback"]
                   and found["requests"] > 20 and found["failed"] == 0 and found["connect_errors"] == 0
                   and serving and healthy == 2 and not stragglers and plan.returncode == 0)
    if not found["ok"]:
        found["output"] = text[-1200:]
    return found


def failing_migration(stack: Stack, trial: int = 1) -> dict[str, Any]:
    """Deploy a migration whose `up` fails on one row half-way through the backfill of SEED_ROWS rows,
    under load: rolled back by itself (recorded as rolled_back, no stand-in column, no version schema),
    no request lost, every row still there; its file taken out again, the stack plans clean."""
    stack.write(version=1)
    stack.ok("up", timeout=600)
    with psycopg.connect(stack.url(), autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        if have < SEED_ROWS:
            conn.execute("INSERT INTO entries (account, amount) SELECT 'seed' || g, '1.00' "
                         "FROM generate_series(1, %s) g", (SEED_ROWS - have,))
        rows_before = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        row = conn.execute("SELECT id FROM entries ORDER BY id OFFSET %s LIMIT 1", (rows_before // 2,)).fetchone()[0]
    name = f"02_amount_{trial}"
    path = stack.folder / "migrations" / f"{name}.yaml"
    path.write_text(FAILS_HALF_WAY.format(row=row))
    load = Load(f"http://127.0.0.1:{stack.port}/entries")
    stack.write(version=1, release="b")
    out = stack.run("deploy", timeout=600)
    result = load.stop()
    text = out.stdout + out.stderr
    with psycopg.connect(stack.url()) as conn:
        state = conn.execute("SELECT state FROM symphony_migrate.migrations WHERE name = %s", (name,)).fetchone()
        stand_ins = conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = 'entries' "
                                 "AND column_name LIKE '\\_symphony\\_%'").fetchone()[0]
        schema = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (f"public_{name}",)).fetchone()[0]
        rows_after = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        amount = conn.execute("SELECT data_type FROM information_schema.columns WHERE table_name = 'entries' "
                              "AND column_name = 'amount'").fetchone()[0]
    path.unlink()
    stack.write(version=1)
    plan = stack.run("plan", "--detailed-exitcode")
    found = {
        "kind": "migration", "deploy_exit": out.returncode, "named": name in text and "not a number" in text,
        "traceback": "Traceback" in text, "requests": result.get("requests", 0), "failed": Load.lost(result),
        "connect_errors": result.get("connect_errors", 0), "state": state[0] if state else None,
        "stand_ins": stand_ins, "version_schema": schema, "rows_lost": max(0, rows_before - rows_after),
        "amount_type": amount, "plan_exit": plan.returncode,
    }
    found["ok"] = (out.returncode != 0 and found["named"] and not found["traceback"] and found["requests"] > 20
                   and found["failed"] == 0 and found["connect_errors"] == 0 and found["state"] == "rolled_back"
                   and stand_ins == 0 and schema == 0 and found["rows_lost"] == 0 and amount == "text"
                   and plan.returncode == 0)
    if not found["ok"]:
        found["output"] = text[-1200:]
    return found
