"""Fault injection at scale: kill -9 at random moments of Symphony's commands, and commands racing for
the stack, on the stack of tests/faults/_harness.py (PostgreSQL with the ledger's migrations, a setup job,
the ledger app as `web` with two replicas behind the switch, a writer keeping every acknowledged id).

R1  For each scenario (a first `up`, a `deploy` with a rollout, a deploy with a migration, a `rollback`,
    a `down`, a `destroy --yes`), --trials times: start the command, wait a random moment within its
    usual duration (measured once first), kill -9 a random victim (the CLI, the agent, PostgreSQL, the
    switch, an app instance, or all of them at once), then run one `symphony up` and check: exit 0,
    `plan --detailed-exitcode` 0, the service serving, the migration state consistent, no orphaned
    process, no acknowledged row lost.
R2  --durability times: kill -9 of the postmaster at a random moment under write load (4 connections, each
    id kept once its commit came back); the agent restarts it; every acknowledged row is there, and
    fsync, synchronous_commit and full_page_writes are on.
R3  --failing times each: a release that crashes, hangs, fails its health check, or becomes healthy only
    after its deadline, and a migration whose `up` fails half-way through its backfill (60,000 rows), under
    load (tests/faults/_failing.py): rolled back by itself, 0 failed requests, nothing left running or
    half-made, the old spec plans clean.
R4  --races times: two or three of `apply -y`, `deploy`, `rollback web --yes`, `down` on a running stack
    with a change to roll out; every other trial, one holds the lock first and the others are started
    while it does (exactly one runs, the others are refused at once naming its pid), the rest are all
    started at the same moment (each runs or is refused at once naming one that ran). The state database
    passes PRAGMA integrity_check; then one `up` converges as in R1 (see race()).

Prints one JSON object (progress on stderr):

    .venv/bin/python bench/faults.py [--trials 50] [--failing 10] [--races 100] [--only SCENARIO,...] [--seed N]

SCENARIO is one of up, deploy, deploy_migration, rollback, down, destroy (R1), durability (R2), failing (R3),
race (R4).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "faults")]

import psycopg  # noqa: E402
from _failing import RELEASES, failing_migration, failing_release  # noqa: E402
from _harness import VICTIMS, Stack, Writer, kill  # noqa: E402

SCENARIOS = ("up", "deploy", "deploy_migration", "rollback", "down", "destroy")


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


class Scenario:
    """Brings the stack to where the command starts, and names the command."""

    def __init__(self, name: str, stack: Stack) -> None:
        self.name, self.stack, self.flip = name, stack, 0

    def prepare(self) -> list[str]:
        s = self.stack
        if self.name == "up":
            s.run("destroy", "--yes", timeout=300)
            s.kill_all()
            return ["up"]
        s.ok("up", timeout=600)
        if self.name == "deploy":
            self.flip += 1
            s.write(version=self.version(), release="ab"[self.flip % 2])
            return ["deploy"]
        if self.name == "deploy_migration":
            self.fresh_migration()
            return ["deploy"]
        if self.name == "rollback":
            self.flip += 1
            s.write(version=self.version(), release="ab"[self.flip % 2])
            s.ok("deploy", timeout=600)
            return ["rollback", "web", "--yes"]
        if self.name == "down":
            return ["down"]
        return ["destroy", "--yes"]

    def version(self) -> int:
        return 2 if (self.stack.folder / "migrations" / "02_v2.yaml").exists() else 1

    def fresh_migration(self) -> None:
        """A migration not yet applied: 02_v2 on a stack that has only 01 (destroyed and brought up anew)."""
        s = self.stack
        s.run("destroy", "--yes", timeout=300)
        s.kill_all()
        (s.folder / "migrations" / "02_v2.yaml").unlink(missing_ok=True)
        s.write(version=1)
        s.ok("up", timeout=600)
        with psycopg.connect(s.url(), autocommit=True) as conn:
            conn.execute("INSERT INTO entries (account, amount) SELECT 'seed' || g, '1.00' "
                         "FROM generate_series(1, 50000) g")
        s.add_migration("02_v2")
        s.write(version=2, release="b")


class Lines:
    """The command's output, read as it comes, so a trial can say in which step the kill fell."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        for line in proc.stdout or []:
            self.lines.append(line.strip())

    def last(self) -> str:
        """The last step the command had reported, its timing and numbers taken out (e.g. 'db: backup')."""
        if not self.lines:
            return "(before any output)"
        return re.sub(r"\d+(\.\d+)?", "N", re.sub(r"^\s*[\d.]+s\s+", "", self.lines[-1]))[:70]


def trial(scenario: Scenario, duration: float | None, rnd: random.Random) -> dict[str, Any]:
    s = scenario.stack
    command = scenario.prepare()
    serving = command[0] not in ("up",)
    writer = Writer(s.port) if serving else None
    victim = rnd.choice(VICTIMS)
    started = time.time()
    proc = s.start(*command)
    lines = Lines(proc)
    if duration is None:  # the calibration run: no kill, how long the command takes
        proc.wait(timeout=900)
        took = time.time() - started
        acked = writer.finish() if writer else []
        return {"calibration": True, "seconds": round(took, 1), "exit": proc.returncode, "acked": len(acked)}
    at = rnd.uniform(0, duration)
    while time.time() - started < at and proc.poll() is None:
        time.sleep(0.01)
    pids = s.victims(victim, proc)
    kill(pids)
    phase = lines.last()
    if victim not in ("cli", "all"):
        proc.wait(timeout=900)  # the command goes on, and may fail or recover by itself
    else:
        proc.kill()
        proc.wait(timeout=60)
    acked = writer.finish() if writer else []
    if command[0] == "destroy":
        acked = []  # destroy deletes the data on purpose: only convergence is checked
    found = s.converged(acked)
    return {"victim": victim, "at_s": round(at, 2), "phase": phase, "killed": len(pids), "command_exit": proc.returncode,
            "acked": len(acked), **found}


COMMANDS = (("apply", "-y"), ("deploy",), ("rollback", "web", "--yes"), ("down",))
AT_ONCE_S = 5.0  # a refusal comes at once: the process exits within this long of its start (Python's start included)


def race(stack: Stack, rnd: random.Random, held: bool, release: str) -> dict[str, Any]:
    """Two or three commands that change the stack, on a running stack with a change to make.

    held: the first command (apply or deploy, which have the change to roll out) is started alone; once it
    holds the lock (its pid is in the lock file) the others are started at once. Strictly, exactly one
    runs: each other one is refused within AT_ONCE_S naming the first's pid, and the first still held the
    lock when the last of them exited (else the trial is inconclusive and says so).
    at once: all are started at the same moment. Each either ran or was refused within AT_ONCE_S naming the
    pid of one that ran; at least one ran.
    Both: the state database passes PRAGMA integrity_check, and one `up` converges as in R1."""
    stack.ok("up", timeout=600)
    if held:
        first = list(rnd.choice(COMMANDS[:2]))
        others = rnd.sample([list(c) for c in COMMANDS if list(c) != first], rnd.choice([1, 2]))
        commands = [first, *others]
    else:
        commands = [list(c) for c in rnd.sample(COMMANDS, rnd.choice([2, 3]))]
    stack.write(version=Scenario("deploy", stack).version(), release=release)
    lock = stack.home / "lock"
    procs: list[subprocess.Popen[str]] = []
    starts: list[float] = []
    inconclusive = False
    if held:
        procs.append(stack.start(*commands[0]))
        starts.append(time.time())
        deadline = time.time() + 60
        while f"pid {procs[0].pid}," not in _read(lock) and procs[0].poll() is None and time.time() < deadline:
            time.sleep(0.005)
    for c in commands[len(procs):]:
        procs.append(stack.start(*c))
        starts.append(time.time())
    outs: list[tuple[list[str], str, int, float]] = []
    for c, p, t0 in zip(commands[1:] if held else commands, procs[1:] if held else procs,
                        starts[1:] if held else starts, strict=True):
        out = p.communicate(timeout=900)[0]
        outs.append((c, out, p.returncode, time.time() - t0))
    if held:
        still_holding = f"pid {procs[0].pid}," in _read(lock)
        inconclusive = not still_holding
        out = procs[0].communicate(timeout=900)[0]
        outs.insert(0, (commands[0], out, procs[0].returncode, time.time() - starts[0]))
    refused = [o for o in outs if "locked by another symphony command" in o[1]]
    ran_pids = {p.pid for p, o in zip(procs, outs, strict=True) if o not in refused}
    named = [o for o in refused if any(f"pid {pid}," in o[1] for pid in ran_pids)]
    slow = [o for o in refused if o[3] > AT_ONCE_S or o[2] != 2]
    with sqlite3.connect(stack.home / "state.db") as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    found = stack.converged([])
    ran = len(outs) - len(refused)
    strict = (ran == 1 and outs[0] not in refused) if held and not inconclusive else ran >= 1
    return {"mode": "held" if held else "at once", "commands": [" ".join(c) for c in commands], "ran": ran,
            "refused": len(refused), "refused_naming_holder": len(named), "refused_late_or_not_exit_2": len(slow),
            "refusal_s": max((o[3] for o in refused), default=0), "inconclusive": inconclusive,
            "integrity": integrity,
            "ok": (found.get("ok", False) and integrity == "ok" and strict and len(named) == len(refused)
                   and not slow),
            **{k: v for k, v in found.items() if k != "ok"}}


def durability(stack: Stack, rnd: random.Random, trial_no: int) -> dict[str, Any]:
    """R2: kill -9 of the postmaster under write load from 4 connections (each commit acknowledged before
    its id is kept); the agent restarts it; every acknowledged row must be there."""
    stack.ok("up", timeout=600)
    url = stack.url()
    table = f"acked_{trial_no}"
    with psycopg.connect(url, autocommit=True) as conn:
        settings = {k: conn.execute(f"SHOW {k}").fetchone()[0] for k in ("fsync", "synchronous_commit",
                                                                          "full_page_writes", "wal_sync_method")}
        conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, payload text)")
    acked: list[int] = []
    stop = threading.Event()

    def writer(k: int) -> None:
        with contextlib.suppress(psycopg.Error), psycopg.connect(url, autocommit=True) as conn:
            i = k
            while not stop.is_set():
                conn.execute(f"INSERT INTO {table} VALUES (%s, repeat('x', 500))", (i,))
                acked.append(i)  # the commit came back: acknowledged
                i += 4

    threads = [threading.Thread(target=writer, args=(k,), daemon=True) for k in range(4)]
    for t in threads:
        t.start()
    time.sleep(rnd.uniform(0.5, 3.0))  # the moment of the kill: random, on purpose
    pid = stack.unit_pids().get("db")
    kill([pid] if pid else [])
    killed_at = time.time()
    for t in threads:
        t.join(timeout=30)
    stop.set()
    back = None
    while back is None and time.time() - killed_at < 120:
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                present = {r[0] for r in conn.execute(f"SELECT id FROM {table}")}
            back = time.time() - killed_at
        except psycopg.Error:
            time.sleep(0.1)
    if back is None:
        return {"ok": False, "acked": len(acked), "error": "PostgreSQL did not come back within 120 s"}
    lost = len(set(acked) - present)
    restarted = stack.unit_pids().get("db") not in (None, pid)
    strong = settings["fsync"] == "on" and settings["synchronous_commit"] == "on" and settings["full_page_writes"] == "on"
    return {"ok": lost == 0 and strong and pid is not None and restarted, "acked": len(acked), "lost_rows": lost,
            "restarted": restarted,
            "converge_s": round(back, 1), "settings": settings}


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--races", type=int, default=100)
    parser.add_argument("--failing", type=int, default=10, help="R3 trials of each failing release and migration")
    parser.add_argument("--durability", type=int, default=20, help="R2 trials")
    parser.add_argument("--only", default=",".join(SCENARIOS) + ",durability,failing,race")
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    args = parser.parse_args()
    rnd = random.Random(args.seed)
    chosen = args.only.split(",")
    results: dict[str, Any] = {"seed": args.seed, "scenarios": {}}
    for name in [n for n in SCENARIOS if n in chosen]:
        folder = Path(tempfile.mkdtemp(prefix=f"symphony-faults-{name}-"))
        stack = Stack(folder / "stack")
        scenario = Scenario(name, stack)
        try:
            calibration = trial(scenario, None, rnd)
            duration = max(1.0, calibration["seconds"])
            log(f"{name}: takes {duration:.1f}s")
            runs = []
            for i in range(args.trials):
                t = trial(scenario, duration, rnd)
                runs.append(t)
                log(f"{name} {i + 1}/{args.trials}: {t['victim']} at {t['at_s']}s -> "
                    f"{'ok' if t.get('ok') else 'FAILED ' + json.dumps(t)[:600]}")
            results["scenarios"][name] = summary(runs, calibration)
        finally:
            stack.destroy()
    if "failing" in chosen:
        folder = Path(tempfile.mkdtemp(prefix="symphony-faults-failing-"))
        stack = Stack(folder / "stack")
        try:
            for kind in [*RELEASES, "migration"]:
                runs = []
                for i in range(args.failing):
                    r = failing_migration(stack, i + 1) if kind == "migration" else failing_release(stack, kind)
                    runs.append(r)
                    log(f"failing {kind} {i + 1}/{args.failing}: {r['requests']} requests, {r['failed']} failed -> "
                        f"{'ok' if r['ok'] else 'FAILED ' + json.dumps(r)[:600]}")
                results["scenarios"][f"failing_{kind}"] = {
                    **summary(runs, None), "requests": sum(r["requests"] for r in runs),
                    "failed_requests": sum(r["failed"] for r in runs)}
        finally:
            stack.destroy()
    if "durability" in chosen:
        folder = Path(tempfile.mkdtemp(prefix="symphony-faults-durability-"))
        stack = Stack(folder / "stack")
        try:
            runs = []
            for i in range(args.durability):
                r = durability(stack, rnd, i + 1)
                runs.append(r)
                log(f"durability {i + 1}/{args.durability}: {r['acked']} acknowledged, lost {r.get('lost_rows')} -> "
                    f"{'ok' if r['ok'] else 'FAILED ' + json.dumps(r)[:600]}")
            results["scenarios"]["durability"] = {**summary(runs, None), "acked": sum(r["acked"] for r in runs),
                                                  "settings": runs[0].get("settings") if runs else None}
        finally:
            stack.destroy()
    if "race" in chosen:
        folder = Path(tempfile.mkdtemp(prefix="symphony-faults-race-"))
        stack = Stack(folder / "stack")
        try:
            runs = []
            for i in range(args.races):
                r = race(stack, rnd, held=i % 2 == 0, release="ba"[(i // 2) % 2])
                runs.append(r)
                log(f"race {i + 1}/{args.races} ({r['mode']}): {r['commands']} ran {r['ran']} refused {r['refused']} -> "
                    f"{'ok' if r['ok'] else 'FAILED ' + json.dumps(r)[:600]}")
            results["scenarios"]["race"] = {
                **summary(runs, None), "held": sum(1 for r in runs if r["mode"] == "held"),
                "held_inconclusive": sum(1 for r in runs if r["inconclusive"]),
                "ran_histogram": dict(Counter(f"{r['mode']}: {r['ran']} ran, {r['refused']} refused" for r in runs)),
                "max_refusal_s": max((r["refusal_s"] for r in runs), default=0)}
        finally:
            stack.destroy()
    print(json.dumps(results, indent=2))


def summary(runs: list[dict[str, Any]], calibration: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "trials": len(runs),
        "passed": sum(1 for r in runs if r.get("ok")),
        "rows_lost": sum(r.get("lost_rows", 0) for r in runs),
        "max_converge_s": max((r.get("converge_s", 0) for r in runs), default=0),
        "command_s": calibration["seconds"] if calibration else None,
        "killed_during": dict(Counter(r["phase"] for r in runs if "phase" in r).most_common(12)),
        "failures": [r for r in runs if not r.get("ok")][:10],
    }


if __name__ == "__main__":
    main()
