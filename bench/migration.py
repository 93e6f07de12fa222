"""A schema migration on a big table under load: Symphony's expand/contract vs naive ALTER TABLE.

A throwaway PostgreSQL (started as the local runtime does) holds readings(id, station, observed_at,
temp) with --rows rows. A separate process runs a steady mixed load (point reads, small range
reads, inserts, updates) over --connections autocommit connections at --rate queries/s in total and
records every query's start time, duration and outcome. A sampler thread polls pg_locks every 10 ms
and keeps the longest lock wait it saw (with the waiting and the blocking statement). Then:

  (a) symphony: the migration "02_temp_f" (rename temp -> temp_c; add temp_f = temp_c * 9/5 + 32,
      backfilled in batches and kept in step by a trigger; an index built concurrently) through
      the engine. start runs while the load is the OLD version (search_path public, column temp);
      then the load switches, connection by connection, to the NEW version (SET search_path TO
      public_02_temp_f, column temp_c), as a rollout would, and complete runs under that load (the
      old version must not run during complete: complete renames temp).
  (a2) symphony_rollback: a fresh table, the same load; start under the old version, the rollout to
      the new version (a second of its inserts and updates through the view), then the rollback of
      that release: every connection back to the old version (SET search_path TO public, column
      temp), and engine.rollback under that load (it drops the version schema, the trigger, the
      shadow column and the index). Then the rows the new version inserted must read the same to the
      old version, and the table must be as it was (no temp_c/temp_f, no version schema).
  (b) naive: the same table rebuilt, the same load, and the plain statements: RENAME COLUMN, ADD
      COLUMN, one UPDATE of every row, CREATE INDEX (not concurrently). The load switches to the new
      column name the moment the rename commits (the best a naive deploy can do), so what it
      measures is the locking; the queries that fail are those caught in that switch.
  (b') naive_old_release: the same as (b), but the load keeps the old column name, as the release
      still running during a naive deploy would: every query after the rename fails.

Prints one JSON object (progress on stderr):

    .venv/bin/python bench/migration.py [--rows 1000000] [--rate 200] [--connections 4] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from symphony.migrations.engine import Engine  # noqa: E402
from symphony.migrations.model import parse_migration  # noqa: E402
from symphony.runtimes.base import Deployment  # noqa: E402
from symphony.runtimes.local.runtime import LocalRuntime  # noqa: E402

VERSION_SCHEMA = "public_02_temp_f"
MIGRATION = {
    "operations": [
        {"rename_column": {"table": "readings", "from": "temp", "to": "temp_c"}},
        {"add_column": {"table": "readings", "up": "temp_c * 9 / 5 + 32",
                        "column": {"name": "temp_f", "type": "real", "nullable": True}}},
        {"create_index": {"name": "readings_station_at_idx", "table": "readings",
                          "columns": ["station", "observed_at"]}},
    ]
}
NAIVE = [
    ("rename", "ALTER TABLE readings RENAME COLUMN temp TO temp_c"),
    ("add_column", "ALTER TABLE readings ADD COLUMN temp_f real"),
    ("update", "UPDATE readings SET temp_f = temp_c * 9 / 5 + 32"),
    ("create_index", "CREATE INDEX readings_station_at_idx ON readings (station, observed_at)"),
]
LOAD_APP = "bench-load"
SAMPLER_APP = "bench-sampler"

# The load process. argv: dsn column0 column1 search_path1 rate connections out max_id.
# SIGUSR1: every connection switches to phase 1 (column1, and SET search_path if search_path1 is not
# "-") before its next query; once all have, OUT.switched appears. SIGUSR2: every connection switches
# to phase 2, the old version again (column0, and SET search_path TO public if search_path1 is not
# "-"); once all have, OUT.switched2 appears. SIGTERM (or OUT.stop appearing): stop, write every query
# as [start (epoch s), duration ms, ok, kind, error, phase, id inserted or None] to OUT.
LOAD = r'''
import json, os, random, signal, sys, threading, time
import psycopg

dsn, col0, col1, path1, rate, connections, out, max_id = sys.argv[1:9]
rate, connections, max_id = float(rate), int(connections), int(max_id)
stop = threading.Event()
phase = [0]
switched = {1: 0, 2: 0}
records = []
lock = threading.Lock()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGUSR1, lambda *_: phase.__setitem__(0, 1))
signal.signal(signal.SIGUSR2, lambda *_: phase.__setitem__(0, 2))
KINDS = ("point", "range", "insert", "update")


def query(kind, col):
    if kind == "point":
        return f"SELECT id, station, {col} FROM readings WHERE id = %s", (random.randint(1, max_id),)
    if kind == "range":
        i = random.randint(1, max_id)
        return f"SELECT count(*), avg({col}) FROM readings WHERE id BETWEEN %s AND %s", (i, i + 50)
    if kind == "insert":
        return (f"INSERT INTO readings (station, observed_at, {col}) VALUES (%s, now(), %s) RETURNING id",
                (f"s{random.randint(0, 499)}", random.uniform(-20, 35)))
    return f"UPDATE readings SET {col} = %s WHERE id = %s", (random.uniform(-20, 35), random.randint(1, max_id))


def search_path(my_phase):
    return path1 if my_phase == 1 else "public"


def connect(my_phase):
    conn = psycopg.connect(dsn, autocommit=True, application_name="bench-load")
    conn.execute("SET statement_timeout = '60s'")
    if my_phase and path1 != "-":
        conn.execute(f"SET search_path TO {search_path(my_phase)}")
    return conn


def worker():
    interval = connections / rate
    my_phase = 0
    conn = connect(0)
    next_at = time.perf_counter() + random.random() * interval
    while not stop.is_set():
        if phase[0] != my_phase:
            previous, my_phase = my_phase, phase[0]
            if path1 != "-":
                conn.execute(f"SET search_path TO {search_path(my_phase)}")
            with lock:
                for p in range(previous + 1, my_phase + 1):  # a connection that slept through phase 1 counts too
                    switched[p] += 1
                    if switched[p] == connections:
                        open(out + ".switched" + ("" if p == 1 else str(p)), "w").close()
        now = time.perf_counter()
        if now < next_at:
            time.sleep(min(next_at - now, 0.02))
            continue
        next_at += interval
        kind = random.choice(KINDS)
        sql, params = query(kind, col1 if my_phase == 1 else col0)
        started = time.time()
        t0 = time.perf_counter()
        ok, error, new_id = True, None, None
        try:
            cur = conn.execute(sql, params)
            if kind == "insert":
                new_id = cur.fetchone()[0]
        except psycopg.Error as exc:
            ok, error = False, type(exc).__name__
        elapsed = (time.perf_counter() - t0) * 1000
        with lock:
            records.append((started, elapsed, ok, kind, error, my_phase, new_id))
        if conn.closed:
            try:
                conn = connect(my_phase)
            except psycopg.Error:
                time.sleep(0.1)


threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
for t in threads:
    t.start()
open(out + ".ready", "w").close()
while not stop.is_set() and not os.path.exists(out + ".stop"):
    time.sleep(0.02)
stop.set()
for t in threads:
    t.join(timeout=70)
with lock:
    data = list(records)
with open(out + ".tmp", "w") as fh:
    json.dump(data, fh)
os.replace(out + ".tmp", out)
'''


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _with(dsn: str, **params: Any) -> str:
    return make_conninfo(dsn, **params)


class Load:
    """The load in its own process, as one version of the application (its column, then maybe another)."""

    def __init__(self, folder: Path, dsn: str, columns: tuple[str, str], search_path1: str | None,
                 rate: float, connections: int, max_id: int) -> None:
        self.out = folder / f"load-{time.time_ns()}.json"
        script = folder / "load.py"
        script.write_text(LOAD)
        self.proc = subprocess.Popen([
            sys.executable, str(script), dsn, columns[0], columns[1], search_path1 or "-", str(rate),
            str(connections), str(self.out), str(max_id)])
        ready = Path(f"{self.out}.ready")
        deadline = time.time() + 30
        while not ready.exists():
            if time.time() > deadline or self.proc.poll() is not None:
                self.kill()
                raise SystemExit("the load process did not start")
            time.sleep(0.02)

    def switch(self, wait: bool = True, phase: int = 1) -> float:
        """Every connection to `phase` (1: the new version, 2: back to the old one); returns when all
        have switched (if wait), in seconds."""
        t0 = time.time()
        self.proc.send_signal(signal.SIGUSR1 if phase == 1 else signal.SIGUSR2)
        done = Path(f"{self.out}.switched" + ("" if phase == 1 else str(phase)))
        while wait and not done.exists():
            if time.time() - t0 > 30 or self.proc.poll() is not None:
                raise SystemExit("the load did not switch versions")
            time.sleep(0.005)
        return time.time() - t0

    def stop(self) -> list[list[Any]]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=90)
        return list(json.loads(self.out.read_text()))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@contextlib.contextmanager
def load_process(*args: Any) -> Iterator[Load]:
    load = Load(*args)
    try:
        yield load
    finally:
        load.kill()  # a no-op after stop()


class LockSampler:
    """Polls pg_locks for ungranted locks every `interval` s; keeps each wait's longest observed age.

    A lower bound (a wait shorter than the interval may be missed, a wait's end is seen to within it).
    """

    QUERY = """
        SELECT l.pid, l.waitstart, a.application_name, l.locktype, l.mode, l.relation::regclass::text,
               extract(epoch FROM clock_timestamp() - l.waitstart) * 1000, left(a.query, 160),
               (SELECT string_agg(b.application_name || ': ' || left(b.query, 160), ' | ')
                  FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids(l.pid)))
          FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE NOT l.granted AND l.waitstart IS NOT NULL AND a.application_name <> %s
    """

    # What the load's slow statements (running > 20 ms) and the other busy backends are doing.
    ACTIVITY = """
        SELECT a.pid, a.query_start, a.application_name, a.backend_type,
               coalesce(a.wait_event_type || ':' || a.wait_event, 'running (CPU or not instrumented)'),
               extract(epoch FROM clock_timestamp() - a.query_start) * 1000, left(a.query, 100)
          FROM pg_stat_activity a
         WHERE a.pid <> pg_backend_pid()
           AND ((a.application_name = %s AND a.state = 'active'
                 AND clock_timestamp() - a.query_start > interval '20 ms')
                OR a.backend_type IN ('autovacuum worker', 'checkpointer', 'walwriter', 'background writer')
                   AND a.wait_event_type IS DISTINCT FROM 'Activity')
    """

    def __init__(self, dsn: str, interval: float = 0.01) -> None:
        self.dsn = dsn
        self.interval = interval
        self.waits: dict[tuple[int, str], dict[str, Any]] = {}
        self.samples = 0
        self.slow: dict[tuple[int, str], dict[str, Any]] = {}  # a slow load statement: its wait events seen
        self.background: dict[str, int] = {}  # "backend type: wait event" -> samples seen busy
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LockSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True, application_name=SAMPLER_APP) as conn:
            while not self._stop.is_set():
                rows = conn.execute(self.QUERY, (SAMPLER_APP,)).fetchall()
                self.samples += 1
                for pid, started, app, btype, wait, ms, text in conn.execute(self.ACTIVITY, (LOAD_APP,)).fetchall():
                    if app != LOAD_APP:
                        key = f"{btype}: {wait}" + (f" ({text[:40]})" if btype == "autovacuum worker" else "")
                        self.background[key] = self.background.get(key, 0) + 1
                        continue
                    entry = self.slow.setdefault((pid, str(started)), {"ms": 0.0, "at": started.timestamp(),
                                                                       "query": text, "waits": {}})
                    entry["ms"] = max(entry["ms"], round(float(ms), 1))
                    entry["waits"][wait] = entry["waits"].get(wait, 0) + 1
                for pid, waitstart, app, locktype, mode, relation, ms, waiting, blockers in rows:
                    key = (pid, str(waitstart))
                    seen = self.waits.get(key)
                    if seen is None or ms > seen["ms"]:
                        self.waits[key] = {
                            "ms": round(float(ms), 1), "at": waitstart.timestamp(), "app": app, "lock": locktype,
                            "mode": mode, "relation": relation, "waiting": waiting, "blocked_by": blockers,
                        }
                self._stop.wait(self.interval)

    def slow_statements(self, origin: float, n: int = 8) -> dict[str, Any]:
        """The load's slowest statements as sampled, with what they waited on (sample counts)."""
        totals: dict[str, int] = {}
        for entry in self.slow.values():
            for wait, count in entry["waits"].items():
                totals[wait] = totals.get(wait, 0) + count
        top = sorted(self.slow.values(), key=lambda e: -e["ms"])[:n]
        return {
            "load_wait_events_over_20ms": dict(sorted(totals.items(), key=lambda kv: -kv[1])),
            "slowest_sampled": [{**{k: v for k, v in e.items() if k != "at"}, "at_s": round(e["at"] - origin, 2)}
                                for e in top],
            "background_busy_samples": dict(sorted(self.background.items(), key=lambda kv: -kv[1])[:10]),
        }

    def longest(self, app: bool) -> dict[str, Any] | None:
        waits = [w for w in self.waits.values() if (w["app"] == LOAD_APP) == app]
        return max(waits, key=lambda w: w["ms"]) if waits else None


def _p(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[max(0, math.ceil(q * len(values)) - 1)], 1)


def _summary(records: list[list[Any]]) -> dict[str, Any]:
    latencies = sorted(r[1] for r in records)
    errors: dict[str, int] = {}
    for r in records:
        if not r[2]:
            key = f"{r[3]}: {r[4]}"
            errors[key] = errors.get(key, 0) + 1
    return {
        "queries": len(records),
        "failed_queries": sum(1 for r in records if not r[2]),
        "max_query_ms": round(latencies[-1], 1) if latencies else None,
        "p99_query_ms": _p(latencies, 0.99),
        "p50_query_ms": _p(latencies, 0.50),
        "errors": errors,
    }


def _step_at(marks: list[tuple[float, str]], t: float) -> str:
    label = "before the migration"
    for at, name in marks:
        if at <= t:
            label = name
    return label


def _slowest(records: list[list[Any]], marks: list[tuple[float, str]], origin: float, n: int = 5) -> list[Any]:
    """The n slowest queries, with the migration step running when each started and ended."""
    out = []
    for r in sorted(records, key=lambda r: -r[1])[:n]:
        begin, end = _step_at(marks, r[0]), _step_at(marks, r[0] + r[1] / 1000)
        out.append({"kind": r[3], "ms": round(r[1], 1), "ok": r[2], "at_s": round(r[0] - origin, 2),
                    "during": begin if begin == end else f"{begin} -> {end}"})
    return out


def _locks(sampler: LockSampler, origin: float) -> dict[str, Any]:
    app, own = sampler.longest(app=True), sampler.longest(app=False)
    if app:
        app = {**{k: v for k, v in app.items() if k != "at"}, "at_s": round(app["at"] - origin, 2)}
    if own:
        own = {**{k: v for k, v in own.items() if k != "at"}, "at_s": round(own["at"] - origin, 2)}
    return {
        "longest_lock_wait_ms": app["ms"] if app else 0.0,
        "longest_lock_wait": app,
        "migration_longest_lock_wait_ms": own["ms"] if own else 0.0,
        "migration_longest_lock_wait": own,
        "lock_samples": sampler.samples,
        "diagnosis": sampler.slow_statements(origin),
    }


def _checkpoints(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter").fetchone()
    return int(row[0]) if row else 0


def _table(dsn: str, rows: int) -> None:
    t0 = time.time()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS readings CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS symphony_migrate CASCADE")
        conn.execute(f"DROP SCHEMA IF EXISTS {VERSION_SCHEMA} CASCADE")
        conn.execute("CREATE TABLE readings (id bigserial PRIMARY KEY, station text NOT NULL, "
                     "observed_at timestamptz NOT NULL, temp real)")
        chunk = 200_000
        for start in range(0, rows, chunk):
            conn.execute(
                "INSERT INTO readings (station, observed_at, temp) SELECT 's' || (g %% 500), "
                "now() - g * interval '1 minute', (random() * 55 - 20)::real "
                "FROM generate_series(%s::bigint, %s::bigint) g", (start + 1, min(start + chunk, rows)))
        conn.execute("VACUUM ANALYZE readings")
        conn.execute("CHECKPOINT")  # the load's WAL does not pay for the table's creation
    _log(f"  table of {rows} rows in {time.time() - t0:.1f}s")


def symphony_scenario(folder: Path, dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    _table(dsn, args.rows)
    marks: list[tuple[float, str]] = []

    def event(message: str) -> None:
        marks.append((time.time(), message.split(": ", 1)[-1]))
        _log(f"  {message}")

    engine = Engine(_with(dsn, application_name="symphony-engine"), events=event)
    migration = parse_migration(MIGRATION, Path("02_temp_f.yaml"))
    checkpoints = _checkpoints(dsn)
    with (load_process(folder, _with(dsn, application_name=LOAD_APP), ("temp", "temp_c"), VERSION_SCHEMA,
                       args.rate, args.connections, args.rows) as load,
          LockSampler(dsn) as sampler):
        time.sleep(1.0)  # a second of steady load before the change
        t0 = time.time()
        marks.append((t0, "start: check and bookkeeping"))
        engine.start(migration, 0)
        start_s = time.time() - t0
        marks.append((time.time(), "after start (old version)"))
        time.sleep(1.0)
        switch_s = load.switch()  # the rollout: the new release, through its version schema
        marks.append((time.time(), "after rollout (new version)"))
        _log(f"  load switched to the new version in {switch_s:.3f}s")
        time.sleep(1.0)
        t1 = time.time()
        marks.append((t1, "complete: running"))
        engine.complete()
        complete_s = time.time() - t1
        marks.append((time.time(), "after complete (new version)"))
        time.sleep(1.0)
        records = load.stop()
    backfill = next((m for _, m in marks if m.startswith("backfilled ")), "")
    words = backfill.split()  # "backfilled N rows of readings in S s"
    rows_done = int(words[1]) if backfill else 0
    seconds = float(words[-1].rstrip("s")) if backfill else 0.0
    with psycopg.connect(dsn) as conn:
        missing = conn.execute("SELECT count(*) FROM readings WHERE id <= %s AND temp_f IS NULL",
                               (args.rows,)).fetchone()
        index = conn.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'readings_station_at_idx'::regclass"
                             ).fetchone()
    old = [r for r in records if r[5] == 0]
    new = [r for r in records if r[5] == 1]
    during_start = [r for r in records if t0 <= r[0] <= t0 + start_s]
    during_complete = [r for r in records if t1 <= r[0] <= t1 + complete_s]
    steps = []
    for (at, name), (nxt, _n) in zip(marks, marks[1:], strict=False):
        if at >= t0:
            steps.append({"step": name, "at_s": round(at - t0, 2), "s": round(nxt - at, 3)})
    return {
        **_summary(records),
        "backfill_rows": rows_done,
        "backfill_s": seconds,
        "backfill_rows_per_s": round(rows_done / seconds) if seconds else None,
        "start_s": round(start_s, 2),
        "complete_s": round(complete_s, 3),
        "total_s": round(start_s + complete_s, 2),
        **_locks(sampler, t0),
        "old_version": {k: v for k, v in _summary(old).items() if k != "errors"},
        "new_version": {k: v for k, v in _summary(new).items() if k != "errors"},
        "during_start": {k: v for k, v in _summary(during_start).items() if k != "errors"},
        "during_complete": {k: v for k, v in _summary(during_complete).items() if k != "errors"},
        "slowest_queries": _slowest(records, marks, t0),
        "steps": steps,
        "checkpoints_during": _checkpoints(dsn) - checkpoints,
        "rows_without_temp_f_after": missing[0] if missing else None,
        "index_valid": bool(index and index[0]),
    }


def symphony_rollback_scenario(folder: Path, dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    """start under the old version, the rollout of the new one, its rollback, then engine.rollback()."""
    _table(dsn, args.rows)
    marks: list[tuple[float, str]] = []

    def event(message: str) -> None:
        marks.append((time.time(), message.split(": ", 1)[-1]))
        _log(f"  {message}")

    engine = Engine(_with(dsn, application_name="symphony-engine"), events=event)
    migration = parse_migration(MIGRATION, Path("02_temp_f.yaml"))
    with (load_process(folder, _with(dsn, application_name=LOAD_APP), ("temp", "temp_c"), VERSION_SCHEMA,
                       args.rate, args.connections, args.rows) as load,
          LockSampler(dsn) as sampler):
        time.sleep(1.0)  # a second of steady load before the change
        t0 = time.time()
        marks.append((t0, "start: check and bookkeeping"))
        engine.start(migration, 0)
        start_s = time.time() - t0
        marks.append((time.time(), "after start (old version)"))
        switch_s = load.switch()  # the rollout: the new release, through its version schema
        t_deployed = time.time()
        marks.append((t_deployed, "after rollout (new version)"))
        _log(f"  load switched to the new version in {switch_s:.3f}s")
        with psycopg.connect(dsn, autocommit=True) as conn:  # rows above it: the new version only
            first_new = conn.execute("SELECT max(id) FROM readings").fetchone()
        time.sleep(1.0)  # the new release writes: inserts and updates through the view
        with psycopg.connect(dsn, autocommit=True) as conn:  # temp_f is gone after the rollback: look now
            temp_f = conn.execute(f"SELECT count(*), count(temp_f) FROM {VERSION_SCHEMA}.readings WHERE id > %s",
                                  (first_new[0] if first_new else 0,)).fetchone()
        t_back = time.time()
        marks.append((t_back, "rollback of the release: switching back"))
        switch_back_s = load.switch(phase=2)  # the old release again (search_path public, column temp)
        marks.append((time.time(), "after the switch back (old version)"))
        _log(f"  load switched back to the old version in {switch_back_s:.3f}s")
        t1 = time.time()
        marks.append((t1, "rollback: running"))
        engine.rollback()
        rollback_s = time.time() - t1
        marks.append((time.time(), "after rollback (old version)"))
        time.sleep(1.0)
        records = load.stop()
    new_ids = [r[6] for r in records if r[5] == 1 and r[3] == "insert" and r[2]]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET search_path TO public")  # read as the old version does
        load_rows = conn.execute("SELECT count(*), count(temp) FROM readings WHERE id > %s", (args.rows,)).fetchone()
        readable = conn.execute("SELECT count(*) FROM readings WHERE id = ANY(%s) AND temp IS NOT NULL",
                                (new_ids,)).fetchone()
        columns = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = 'readings' ORDER BY ordinal_position").fetchall()]
        schema = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (VERSION_SCHEMA,)).fetchone()
        index = conn.execute("SELECT to_regclass('public.readings_station_at_idx')").fetchone()
        triggers = [r[0] for r in conn.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'public.readings'::regclass AND NOT tgisinternal"
        ).fetchall()]
        state = conn.execute("SELECT state FROM symphony_migrate.migrations WHERE name = %s",
                             (migration.name,)).fetchone()
    during_deploy = [r for r in records if t0 <= r[0] <= t_deployed]
    during_rollback = [r for r in records if t_back <= r[0] <= t1 + rollback_s + 1.0]
    steps = []
    for (at, name), (nxt, _n) in zip(marks, marks[1:], strict=False):
        if at >= t0:
            steps.append({"step": name, "at_s": round(at - t0, 2), "s": round(nxt - at, 3)})
    leftovers = [c for c in columns if c in ("temp_c", "temp_f") or c.startswith("_symphony_")]
    return {
        **_summary(records),
        "start_s": round(start_s, 2),
        "switch_s": round(switch_s, 3),
        "switch_back_s": round(switch_back_s, 3),
        "rollback_s": round(rollback_s, 3),
        **_locks(sampler, t0),
        "during_deploy": {k: v for k, v in _summary(during_deploy).items() if k != "errors"},
        "during_rollback": {k: v for k, v in _summary(during_rollback).items() if k != "errors"},
        "old_version": {k: v for k, v in _summary([r for r in records if r[5] != 1]).items() if k != "errors"},
        "new_version": {k: v for k, v in _summary([r for r in records if r[5] == 1]).items() if k != "errors"},
        "slowest_queries": _slowest(records, marks, t0),
        "steps": steps,
        "new_version_updates": sum(1 for r in records if r[5] == 1 and r[3] == "update" and r[2]),
        "new_version_rows": len(new_ids),
        "new_version_rows_readable_by_old": readable[0] if readable else None,
        "new_version_temp_f_before_rollback": {"rows": temp_f[0], "temp_f_not_null": temp_f[1]} if temp_f else None,
        "load_rows": load_rows[0] if load_rows else None,
        "load_rows_with_temp": load_rows[1] if load_rows else None,
        "columns_after": columns,
        "new_columns_left": leftovers,
        "version_schema_gone": schema is None,
        "index_gone": bool(index and index[0] is None),
        "triggers_left": triggers,
        "migration_state": state[0] if state else None,
        "clean_after": not leftovers and schema is None and not triggers and bool(index and index[0] is None),
    }


def naive_scenario(folder: Path, dsn: str, args: argparse.Namespace, adapt: bool) -> dict[str, Any]:
    _table(dsn, args.rows)
    marks: list[tuple[float, str]] = []
    steps: dict[str, float] = {}
    with (load_process(folder, _with(dsn, application_name=LOAD_APP), ("temp", "temp_c"), None,
                       args.rate, args.connections, args.rows) as load,
          LockSampler(dsn) as sampler,
          psycopg.connect(dsn, autocommit=True, application_name="naive-migration") as conn):
        time.sleep(1.0)
        t0 = time.time()
        for name, statement in NAIVE:
            t = time.time()
            marks.append((t, name))
            conn.execute(statement)
            steps[name] = round(time.time() - t, 3)
            if name == "rename" and adapt:
                load.switch(wait=False)  # the load uses temp_c from its next query on
            _log(f"  naive: {statement} ({steps[name]}s)")
        total = time.time() - t0
        marks.append((time.time(), "after the migration"))
        time.sleep(1.0)
        records = load.stop()
    return {
        **_summary(records),
        "start_s": None,
        "complete_s": None,
        "total_s": round(total, 2),
        "steps_s": steps,
        **_locks(sampler, t0),
        "slowest_queries": _slowest(records, marks, t0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=200.0, help="queries/s in total")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    args = parser.parse_args()
    if args.quick:
        args.rows = 100_000
    wall = time.time()
    folder = Path(tempfile.mkdtemp(prefix="symphony-bench-migration-"))
    folder.chmod(0o755)
    runtime = LocalRuntime(folder)
    try:
        spec = SimpleNamespace(version=15, databases=["bench"], port=None, user="symphony",
                               settings={"max_wal_size": "4GB"}, bind="127.0.0.1")
        dsn = runtime.ensure_postgres(Deployment("db", "postgres", "h", postgres=spec), lambda *_: None)["url"]
        _log(f"{args.rows} rows, load {args.rate:g} q/s over {args.connections} connections")
        _log("(a) symphony")
        symphony = symphony_scenario(folder, dsn, args)
        _log("(a2) symphony, rolled back: the new release rolled back, then the migration")
        rollback = symphony_rollback_scenario(folder, dsn, args)
        _log("(b) naive, the load switching to temp_c as the rename commits")
        naive = naive_scenario(folder, dsn, args, adapt=True)
        _log("(b') naive, the load staying on the old release (column temp)")
        naive_old = naive_scenario(folder, dsn, args, adapt=False)
        print(json.dumps({
            "benchmark": "migration", "cpus": os.cpu_count(), "rows": args.rows, "rate": args.rate,
            "connections": args.connections, "wall_s": round(time.time() - wall, 1),
            "targets_met": {"max_query_ms < 100": (symphony["max_query_ms"] or 0) < 100,
                            "failed_queries == 0": symphony["failed_queries"] == 0,
                            "rollback max_query_ms < 100": (rollback["max_query_ms"] or 0) < 100,
                            "rollback failed_queries == 0": rollback["failed_queries"] == 0},
            "symphony": symphony, "symphony_rollback": rollback, "naive": naive,
            "naive_old_release": {k: naive_old[k] for k in (
                "queries", "failed_queries", "max_query_ms", "p99_query_ms", "errors", "total_s", "steps_s",
                "longest_lock_wait_ms")},
            "notes": (
                "symphony: one load process throughout; it is the OLD version (search_path public, column temp) "
                "during start, then each connection switches (SET search_path TO public_02_temp_f, column "
                "temp_c) before complete, as a rollout would: complete renames temp, so the old version must be "
                "gone by then. start_s includes the batched backfill and the concurrent index build. "
                "symphony_rollback: the same start and rollout, then the load goes back to the old version "
                "(phase 2: search_path public, column temp) and engine.rollback runs under it; during_deploy "
                "is from start until every connection is on the new version, during_rollback from the switch "
                "back until a second after rollback returned. new_version_rows are the rows the new version "
                "inserted (ids from RETURNING); _readable_by_old counts those the old version reads with a "
                "temp (the rename is only a view until complete, so temp_c is temp). temp_f is the add_column's "
                "shadow column: its trigger runs `up` only for the old version's writes, so the new version's "
                "own inserts leave it NULL (the load's new version does not write temp_f): "
                "new_version_temp_f_before_rollback reads it, through the view, for the rows inserted once every "
                "connection was on the new version. Lock waits are aged with clock_timestamp() (now() is the "
                "sampler's statement start, so a wait begun after it showed a negative age). "
                "naive: the load switches to temp_c the moment the RENAME commits (the best a naive deploy can "
                "do), so its latencies show the locking (the full-table UPDATE holds every row until it commits; "
                "CREATE INDEX blocks writes); its failures are the queries caught in the switch. "
                "naive_old_release: the load keeps the old column name, as the still-running release would: "
                "every query after the rename fails. Latencies are per query on the connection (the load is "
                "open-loop: a blocked connection catches up afterwards; the queueing delay is not counted). "
                "Lock waits are sampled from pg_locks every 10 ms (a lower bound). longest_lock_wait_ms is the "
                "load's; migration_longest_lock_wait_ms is the migration's own DDL waiting for the load. "
                "A 2-core machine shared with other work: timings are noisy."
            ),
        }, indent=2))
    finally:
        with contextlib.suppress(Exception):
            runtime.stop_all(lambda *_: None)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
