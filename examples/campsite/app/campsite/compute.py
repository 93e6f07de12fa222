"""Hourly temperatures: per station (time-weighted), then per campground (inverse-distance weighted).

    python -m campsite.compute

Env: DATABASE_URL, IDW_POWER (2). Everything happens in SQL; re-running updates rows in place.
"""

from __future__ import annotations

import os
import time

import psycopg

from campsite import db

# Each reading counts toward the hours within 60 minutes of it, weighted 1/max(|minutes away|, 1).
STATION_HOURLY = """
INSERT INTO station_hourly (station_id, hour, temp)
SELECT r.station_id, h.hour, (sum(r.temp * w.weight) / sum(w.weight))::real
FROM readings r
CROSS JOIN LATERAL (
    SELECT date_trunc('hour', r.observed_at) + make_interval(hours => k) AS hour
    FROM (VALUES (-1), (0), (1)) AS v (k)
) h
CROSS JOIN LATERAL (SELECT abs(date_part('epoch', r.observed_at - h.hour)) / 60.0 AS minutes) m
CROSS JOIN LATERAL (SELECT 1.0 / greatest(m.minutes, 1.0) AS weight) w
WHERE m.minutes <= 60
GROUP BY r.station_id, h.hour
ON CONFLICT (station_id, hour) DO UPDATE SET temp = EXCLUDED.temp
WHERE station_hourly.temp IS DISTINCT FROM EXCLUDED.temp
"""

# Each campground: the stations linked to it that have a value that hour, weighted 1/distance^power.
CAMPGROUND_HOURLY = """
INSERT INTO campground_hourly (campground_id, hour, temp)
SELECT cs.campground_id, sh.hour, (sum(sh.temp * w.weight) / sum(w.weight))::real
FROM campground_stations cs
CROSS JOIN LATERAL (SELECT 1.0 / power(greatest(cs.distance_km, 0.1), %(power)s) AS weight) w
JOIN station_hourly sh ON sh.station_id = cs.station_id
GROUP BY cs.campground_id, sh.hour
ON CONFLICT (campground_id, hour) DO UPDATE SET temp = EXCLUDED.temp
WHERE campground_hourly.temp IS DISTINCT FROM EXCLUDED.temp
"""

# Campgrounds that lost all their stations (e.g. a smaller radius) keep no stale values.
PRUNE = """
DELETE FROM campground_hourly ch
WHERE NOT EXISTS (SELECT 1 FROM campground_stations cs WHERE cs.campground_id = ch.campground_id)
"""


def run(conn: psycopg.Connection, power: float) -> dict[str, int]:
    conn.execute("SET LOCAL synchronous_commit = off")
    conn.execute("SET LOCAL work_mem = '256MB'")
    stations = conn.execute(STATION_HOURLY).rowcount
    campgrounds = conn.execute(CAMPGROUND_HOURLY, {"power": power}).rowcount
    pruned = conn.execute(PRUNE).rowcount
    conn.commit()
    return {"station_hours": stations, "campground_hours": campgrounds, "pruned": pruned}


def main() -> None:
    started = time.monotonic()
    power = float(os.environ.get("IDW_POWER", "2"))
    with db.connect() as conn:
        db.ensure_schema(conn)
        changed = run(conn, power)
        totals = conn.execute(
            "SELECT (SELECT count(*) FROM station_hourly), (SELECT count(*) FROM campground_hourly)"
        ).fetchone()
    print(
        f"compute: {changed['station_hours']} station-hours and {changed['campground_hours']} campground-hours "
        f"written or changed (totals {totals[0]} and {totals[1]}), {changed['pruned']} pruned, "
        f"IDW power {power:g}, in {time.monotonic() - started:.1f}s",
        flush=True,
    )


if __name__ == "__main__":
    main()
