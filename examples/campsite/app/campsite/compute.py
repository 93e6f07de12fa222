"""Hourly temperatures: per station (time-weighted), then per campground (inverse-distance weighted).

    python -m campsite.compute

Env: DATABASE_URL, IDW_POWER (2). Everything happens in SQL; re-running updates rows in place.
"""

from __future__ import annotations

import os
import time

import psycopg

from campsite import db, schema

# Each reading counts toward the hours within 60 minutes of it, weighted 1/max(|minutes away|, 1).
# Times are handled as epoch seconds: the nominal hours a reading can count toward are the one it
# falls in, the next one, and (for a reading exactly on the hour) the one before.
STATION_HOURLY = """
CREATE TEMP TABLE new_station_hourly ON COMMIT DROP AS
SELECT station_id, to_timestamp(hour) AS hour, (sum(temp * weight) / sum(weight))::real AS temp
FROM (
    SELECT r.station_id, r.temp, r.floor_hour + 3600 * v.k AS hour,
           60.0 / greatest(abs(r.at - r.floor_hour - 3600 * v.k), 60.0) AS weight
    FROM (
        SELECT station_id, temp, date_part('epoch', observed_at) AS at,
               floor(date_part('epoch', observed_at) / 3600) * 3600 AS floor_hour
        FROM readings
    ) r
    CROSS JOIN (VALUES (-1), (0), (1)) AS v (k)
    WHERE abs(r.at - r.floor_hour - 3600 * v.k) <= 3600
) weighted
GROUP BY station_id, hour
"""

# Each campground: the stations linked to it that have a value that hour, weighted 1/distance^power.
CAMPGROUND_HOURLY = """
CREATE TEMP TABLE new_campground_hourly ON COMMIT DROP AS
SELECT cs.campground_id, sh.hour, (sum(sh.temp * cs.weight) / sum(cs.weight))::real AS temp
FROM (
    SELECT campground_id, station_id, 1.0 / power(greatest(distance_km, 0.1), %(power)s) AS weight
    FROM campground_stations
) cs
JOIN station_hourly sh ON sh.station_id = cs.station_id
GROUP BY cs.campground_id, sh.hour
"""

# Inserting in key order keeps the primary-key index appends and lookups sequential.
STATION_UPSERT = """
INSERT INTO station_hourly (station_id, hour, temp) SELECT station_id, hour, temp FROM new_station_hourly
ORDER BY station_id, hour
ON CONFLICT (station_id, hour) DO UPDATE SET temp = EXCLUDED.temp
WHERE station_hourly.temp IS DISTINCT FROM EXCLUDED.temp
"""

# Campgrounds that lost all their stations (e.g. a smaller radius) keep no stale values.
PRUNE = """
DELETE FROM campground_hourly ch
WHERE NOT EXISTS (SELECT 1 FROM campground_stations cs WHERE cs.campground_id = ch.campground_id)
"""


def run(conn: psycopg.Connection, power: float) -> dict[str, int]:
    """Recompute both tables in one transaction; returns how many rows each step wrote or changed."""
    conn.execute("SET LOCAL work_mem = '256MB'")
    conn.execute("SET LOCAL jit = off")  # compiling costs more than it saves at this size
    conn.execute("ANALYZE readings, campground_stations")
    conn.execute(STATION_HOURLY)
    stations = conn.execute(STATION_UPSERT).rowcount
    conn.execute("ANALYZE station_hourly")
    conn.execute(CAMPGROUND_HOURLY, {"power": power})
    campgrounds = conn.execute(schema.CAMPGROUND_UPSERT).rowcount
    pruned = conn.execute(PRUNE).rowcount
    conn.commit()
    return {"station_hours": stations, "campground_hours": campgrounds, "pruned": pruned}


def main() -> None:
    started = time.monotonic()
    power = float(os.environ.get("IDW_POWER", "2"))
    with db.connect() as conn:
        schema.ensure_schema(conn)
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
