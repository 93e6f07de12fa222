"""Fault injection at scale: kill -9 at random moments of Symphony's commands, and commands racing for
the stack, on the stack of tests/faults/_harness.py (PostgreSQL with the ledger's migrations, a setup job,
the ledger app as `web` with two replicas behind the switch, a writer keeping every acknowledged id).

R1  For each scenario (a first `up`, a `deploy` with a rollout, a deploy with a migration, a `rollback`,
    a `down`, a `destroy --yes`), --trials times: start the command, wait a random moment within its
    usual duration (measured once first), kill -9 a random victim (the CLI, the agent, PostgreSQL, the
    switch, an app instance, or all of them at once), then run one `symphony up` and check: exit 0,
    `plan --detailed-exitcode` 0, the service serving, the migration state consistent, no orphaned
    process, no acknowledged row lost.
R4  --races times: two or three of `apply -y`, `deploy`, `rollback web --yes`, `down` started at once on
    a running stack: every command either ran or was refused at once naming the holder; the state
    database passes PRAGMA integrity_check; then one `up` converges as in R1.

Prints one JSON object (progress on stderr):

    .venv/bin/python bench/faults.py [--trials 50] [--races 100] [--only SCENARIO,...] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "faults")]

import psycopg  # noqa: E402
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


def trial(scenario: Scenario, duration: float | None, rnd: random.Random) -> dict[str, Any]:
    s = scenario.stack
    command = scenario.prepare()
    serving = command[0] not in ("up",)
    writer = Writer(s.port) if serving else None
    victim = rnd.choice(VICTIMS)
    started = time.time()
    proc = s.start(*command)
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
    if victim not in ("cli", "all"):
        proc.wait(timeout=900)  # the command goes on, and may fail or recover by itself
    else:
        proc.kill()
        proc.wait(timeout=60)
    acked = writer.finish() if writer else []
    if command[0] == "destroy":
        acked = []  # destroy deletes the data on purpose: only convergence is checked
    found = s.converged(acked)
    return {"victim": victim, "at_s": round(at, 2), "killed": len(pids), "command_exit": proc.returncode,
            "acked": len(acked), **found}


def race(stack: Stack, rnd: random.Random) -> dict[str, Any]:
    stack.ok("up", timeout=600)
    commands = rnd.sample([["apply", "-y"], ["deploy"], ["rollback", "web", "--yes"], ["down"]], rnd.choice([2, 3]))
    stack.write(version=Scenario("deploy", stack).version(), release=rnd.choice("ab"))
    procs = [stack.start(*c) for c in commands]
    outs = [(c, p.communicate(timeout=900)[0], p.returncode) for c, p in zip(commands, procs, strict=True)]
    refused = [o for o in outs if "locked by another symphony command" in o[1]]
    unnamed = [o for o in refused if "(pid " not in o[1]]
    with sqlite3.connect(stack.home / "state.db") as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    found = stack.converged([])
    return {"commands": [" ".join(c) for c in commands], "ran": len(outs) - len(refused), "refused": len(refused),
            "refused_without_holder": len(unnamed), "integrity": integrity,
            "ok": found.get("ok", False) and integrity == "ok" and not unnamed and len(outs) - len(refused) >= 1,
            **{k: v for k, v in found.items() if k != "ok"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--races", type=int, default=100)
    parser.add_argument("--only", default=",".join(SCENARIOS) + ",race")
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
    if "race" in chosen:
        folder = Path(tempfile.mkdtemp(prefix="symphony-faults-race-"))
        stack = Stack(folder / "stack")
        try:
            runs = []
            for i in range(args.races):
                r = race(stack, rnd)
                runs.append(r)
                log(f"race {i + 1}/{args.races}: {r['commands']} ran {r['ran']} refused {r['refused']} -> "
                    f"{'ok' if r['ok'] else 'FAILED ' + json.dumps(r)[:600]}")
            results["scenarios"]["race"] = summary(runs, None)
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
        "failures": [r for r in runs if not r.get("ok")][:10],
    }


if __name__ == "__main__":
    main()
