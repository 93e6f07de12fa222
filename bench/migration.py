"""A schema migration on a big table under load: Symphony's expand/contract vs naive ALTER TABLE.

A real PostgreSQL (started like the local runtime does) holds readings(id, station, observed_at, temp)
with --rows rows. A separate process runs a steady mixed load (point reads, range reads, inserts,
updates) over --connections connections at --rate queries/s and records every query's latency
and outcome. Then:

  (a) symphony: the migration "02_temp_f" (rename temp -> temp_c; add temp_f = temp_c * 9/5 + 32,
      backfilled in batches and kept in step by a trigger; an index built concurrently) through
      the engine: start while the load runs as the OLD version (search_path public, column temp),
      then the load switches to the NEW version (search_path public_02_temp_f, column temp_c), as a
      rollout would, and complete runs under that load.
  (b) naive: the same table rebuilt, the same load (old names), and the plain statements: RENAME
      COLUMN, ADD COLUMN, one UPDATE of every row, CREATE INDEX (not concurrently). Queries that
      use the old column name after the rename fail: that is what a naive deploy does to the
      running release.

Prints one JSON object: per scenario max_query_ms, p99_query_ms, queries, failed_queries, and the
time of each step (for (a) the backfill's rows/s).

    .venv/bin/python bench/migration.py [--rows 1000000] [--rate 200] [--connections 4] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from symphony.migrations.engine import Engine  # noqa: E402
from symphony.migrations.model import parse_migration  # noqa: E402
from symphony.runtimes.base import Deployment  # noqa: E402
from symphony.runtimes.local.runtime import LocalRuntime  # noqa: E402

MIGRATION = {
    "operations": [
        {"rename_column": {"table": "readings", "from": "temp", "to": "temp_c"}},
        {"add_column": {"table": "readings", "up": "temp_c * 9 / 5 + 32",
                        "column": {"name": "temp_f", "type": "real", "nullable": True}}},
        {"create_index": {"name": "readings_station_at_idx", "table": "readings", "columns": ["station", "observed_at"]}},
    ]
}

LOAD = r'''
import json, random, signal, sys, threading, time
import psycopg

dsn, column, rate, connections, out, ready, max_id = sys.argv[1:8]
rate, connections, max_id = float(rate), int(connections), int(max_id)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
records = []
lock = threading.Lock()
QUERIES = [
    ("point", f"SELECT {column} FROM readings WHERE id = %s", lambda: (random.randint(1, max_id),)),
    ("range", f"SELECT avg({column}) FROM readings WHERE id BETWEEN %s AND %s + 50",
     lambda: (lambda i: (i, i))(random.randint(1, max_id))),
    ("insert", f"INSERT INTO readings (station, observed_at, {column}) VALUES (%s, now(), %s)",
     lambda: (f"s{random.randint(1, 500)}", random.uniform(-20, 35))),
    ("update", f"UPDATE readings SET {column} = %s WHERE id = %s", lambda: (random.uniform(-20, 35), random.randint(1, max_id))),
]

def worker(n):
    interval = connections / rate
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("SET statement_timeout = '30s'")
    next_at = time.perf_counter() + random.random() * interval
    while not stop.is_set():
        now = time.perf_counter()
        if now < next_at:
            time.sleep(min(next_at - now, 0.05))
            continue
        next_at += interval
        kind, sql, params = random.choice(QUERIES)
        started = time.time()
        t0 = time.perf_counter()
        ok, error = True, None
        try:
            conn.execute(sql, params())
        except psycopg.Error as exc:
            ok, error = False, type(exc).__name__
            if conn.closed:
                conn = psycopg.connect(dsn, autocommit=True)
        with lock:
            records.append((started, (time.perf_counter() - t0) * 1000, ok, kind, error))

threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
for t in threads:
    t.start()
open(ready, "w").close()
while not stop.is_set():
    time.sleep(0.05)
for t in threads:
    t.join(timeout=35)
with open(out, "w") as fh:
    json.dump(records, fh)
'''


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Load:
    """The load in its own process, as one version of the application (its search_path and column)."""

    def __init__(self, folder: Path, dsn: str, column: str, rate: float, connections: int, max_id: int) -> None:
        self.out = folder / f"load-{time.time_ns()}.json"
        ready = self.out.with_suffix(".ready")
        script = folder / "load.py"
        script.write_text(LOAD)
        self.proc = subprocess.Popen([sys.executable, str(script), dsn, column, str(rate), str(connections),
                                      str(self.out), str(ready), str(max_id)])
        deadline = time.time() + 30
        while not ready.exists():
            if time.time() > deadline or self.proc.poll() is not None:
                raise SystemExit("the load process did not start")
            time.sleep(0.02)

    def stop(self) -> list[list[Any]]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        return json.loads(self.out.read_text())


def _summary(records: list[list[Any]]) -> dict[str, Any]:
    latencies = sorted(r[1] for r in records)
    errors: dict[str, int] = {}
    for r in records:
        if not r[2]:
            errors[r[4]] = errors.get(r[4], 0) + 1
    return {
        "queries": len(records),
        "failed_queries": sum(1 for r in records if not r[2]),
        "max_query_ms": round(latencies[-1], 1) if latencies else None,
        "p99_query_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1) if latencies else None,
        "errors": errors,
    }


def _table(dsn: str, rows: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS readings CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS symphony_migrate CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS public_02_temp_f CASCADE")
        conn.execute("CREATE TABLE readings (id bigserial PRIMARY KEY, station text NOT NULL, "
                     "observed_at timestamptz NOT NULL, temp real)")
        chunk = 200_000
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            conn.execute(
                "INSERT INTO readings (station, observed_at, temp) SELECT 's' || (g %% 500), "
                "now() - g * interval '1 minute', (random() * 55 - 20)::real FROM generate_series(1, %s) g", (n,))
        conn.execute("VACUUM ANALYZE readings")


def symphony_scenario(folder: Path, dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    _table(dsn, args.rows)
    events: list[tuple[float, str]] = []
    engine = Engine(dsn, events=lambda m: (events.append((time.time(), m)), _log(f"  {m}")))
    migration = parse_migration(MIGRATION, Path("02_temp_f.yaml"))
    old = Load(folder, dsn, "temp", args.rate, args.connections, args.rows)
    time.sleep(1.0)  # a second of steady load before the change (not synchronisation)
    t0 = time.time()
    engine.start(migration, 0)
    start_s = time.time() - t0
    time.sleep(1.0)
    records = old.stop()
    # The rollout: the new release reads and writes through its version schema.
    new_dsn = f"{dsn}?options=-csearch_path%3Dpublic_02_temp_f"
    new = Load(folder, new_dsn, "temp_c", args.rate, args.connections, args.rows)
    time.sleep(1.0)
    t1 = time.time()
    engine.complete()
    complete_s = time.time() - t1
    time.sleep(1.0)
    records += new.stop()
    backfill = next((m for _, m in events if "backfilled" in m and " rows of " in m), "")
    words = backfill.split()
    rows_done = int(words[2]) if len(words) > 2 and words[1] == "backfilled" else 0
    seconds = float(words[-1].rstrip("s")) if backfill else 0.0
    with psycopg.connect(new_dsn) as conn:
        # Every row that existed before (or that the old version wrote) has temp_f; rows the new version
        # inserts without it are NULL by its own choice.
        missing = conn.execute("SELECT count(*) FROM readings WHERE id <= %s AND temp_f IS NULL AND temp_c IS NOT NULL",
                               (args.rows,)).fetchone()[0]
    return {
        **_summary(records),
        "start_s": round(start_s, 2),
        "complete_s": round(complete_s, 2),
        "total_s": round(start_s + complete_s, 2),
        "backfill_rows": rows_done,
        "backfill_rows_per_s": round(rows_done / seconds) if seconds else None,
        "old_rows_missing_temp_f_after": missing,
    }


def naive_scenario(folder: Path, dsn: str, args: argparse.Namespace) -> dict[str, Any]:
    _table(dsn, args.rows)
    load = Load(folder, dsn, "temp", args.rate, args.connections, args.rows)
    time.sleep(1.0)
    steps = {}
    t0 = time.time()
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, statement in (
            ("rename_s", "ALTER TABLE readings RENAME COLUMN temp TO temp_c"),
            ("add_s", "ALTER TABLE readings ADD COLUMN temp_f real"),
            ("update_s", "UPDATE readings SET temp_f = temp_c * 9 / 5 + 32"),
            ("index_s", "CREATE INDEX readings_station_at_idx ON readings (station, observed_at)"),
        ):
            t = time.time()
            conn.execute(statement)
            steps[name] = round(time.time() - t, 2)
            _log(f"  naive: {statement} ({steps[name]}s)")
    total = time.time() - t0
    time.sleep(1.0)
    return {**_summary(load.stop()), **steps, "total_s": round(total, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    args = parser.parse_args()
    if args.quick:
        args.rows = 100_000
    folder = Path(tempfile.mkdtemp(prefix="symphony-bench-migration-"))
    folder.chmod(0o755)
    runtime = LocalRuntime(folder)
    try:
        spec = SimpleNamespace(version=15, databases=["bench"], port=None, user="symphony",
                               settings={"max_wal_size": "4GB"}, bind="127.0.0.1")
        dsn = runtime.ensure_postgres(Deployment("db", "postgres", "h", postgres=spec), lambda *_: None)["url"]
        _log(f"table of {args.rows} rows, load {args.rate:g} q/s over {args.connections} connections")
        _log("(a) symphony")
        symphony = symphony_scenario(folder, dsn, args)
        _log("(b) naive")
        naive = naive_scenario(folder, dsn, args)
        print(json.dumps({
            "benchmark": "migration", "cpus": os.cpu_count(), "rows": args.rows, "rate": args.rate,
            "connections": args.connections, "symphony": symphony, "naive": naive,
            "notes": "symphony: the load runs as the old version during start and as the new version "
                     "(search_path of its version schema) during complete, as around a rollout; naive: the "
                     "load keeps the old column name, so every query after the rename fails, as the running "
                     "release would.",
        }, indent=2))
    finally:
        with contextlib.suppress(Exception):
            runtime.stop_all(lambda *_: None)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
