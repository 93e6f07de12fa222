"""Load campgrounds and stations, link stations to campgrounds, and generate hourly readings.

    python -m campsite.ingest

Env: DATABASE_URL, STATION_RADIUS_KM (50), INGEST_DAYS (14), INGEST_END (ISO UTC, default now
truncated to the hour), INGEST_SEED (42). Re-running with the same settings changes nothing.

Every COPY goes to a temp table first: with a schema version selected (views over the tables),
PostgreSQL refuses COPY into a view.
"""

from __future__ import annotations

import csv
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from campsite import db, geo, schema
from campsite.weather import Station

DATA = Path(__file__).resolve().parent / "data"
CHUNK = 1 << 20


def read_campgrounds() -> list[tuple[int, str, float, float]]:
    with (DATA / "campgrounds.csv").open(newline="", encoding="utf-8") as fh:
        return [
            (int(r["facility_id"]), r["name"], float(r["lat"]), float(r["lon"])) for r in csv.DictReader(fh)
        ]


def read_stations() -> list[tuple[str, float, float]]:
    with (DATA / "stations.csv").open(newline="", encoding="utf-8") as fh:
        return [(r["station_id"], float(r["lat"]), float(r["lon"])) for r in csv.DictReader(fh)]


def ingest_end() -> datetime:
    raw = os.environ.get("INGEST_END")
    end = datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else datetime.now(UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    return end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def upsert(
    conn: psycopg.Connection, table: str, columns: list[str], rows: list[tuple], update: bool = True
) -> None:
    """COPY `rows` into a temp table, then insert them into `table`, updating on key conflict."""
    cols = ", ".join(columns)
    conn.execute(f"CREATE TEMP TABLE tmp_{table} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
    with conn.cursor().copy(f"COPY tmp_{table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns[1:])
    mine = ", ".join(f"{table}.{c}" for c in columns)
    theirs = ", ".join(f"EXCLUDED.{c}" for c in columns)
    action = f"DO UPDATE SET {sets} WHERE ({mine}) IS DISTINCT FROM ({theirs})"
    conn.execute(
        f"INSERT INTO {table} ({cols}) SELECT {cols} FROM tmp_{table} "
        f"ON CONFLICT ({columns[0]}) {action if update else 'DO NOTHING'}"
    )


def load_links(conn: psycopg.Connection, links: list[tuple[int, str, float]]) -> None:
    """Replace the campground-station links (the radius may have changed since the last run)."""
    conn.execute(
        "CREATE TEMP TABLE tmp_links (campground_id int, station_id text, distance_km float8) ON COMMIT DROP"
    )
    with conn.cursor().copy("COPY tmp_links (campground_id, station_id, distance_km) FROM STDIN") as copy:
        for link in links:
            copy.write_row(link)
    conn.execute("DELETE FROM campground_stations")
    conn.execute(
        "INSERT INTO campground_stations (campground_id, station_id, distance_km) "
        "SELECT campground_id, station_id, distance_km FROM tmp_links"
    )


def load_readings(conn: psycopg.Connection, stations: list[Station], hours: list[int]) -> tuple[int, int]:
    """Generate and insert readings; returns (generated, newly inserted)."""
    conn.execute("CREATE TEMP TABLE tmp_readings (station_id text, at bigint, temp real) ON COMMIT DROP")
    generated = 0
    with conn.cursor().copy("COPY tmp_readings (station_id, at, temp) FROM STDIN") as copy:
        buf: list[str] = []
        size = 0
        for station in stations:
            for at, temp in station.readings(hours):
                line = f"{station.id}\t{at}\t{temp:.1f}\n"
                buf.append(line)
                size += len(line)
                generated += 1
            if size >= CHUNK:
                copy.write("".join(buf))
                buf, size = [], 0
        copy.write("".join(buf))
    cur = conn.execute(
        "INSERT INTO readings (station_id, observed_at, temp) "
        "SELECT station_id, to_timestamp(at), temp FROM tmp_readings ON CONFLICT DO NOTHING"
    )
    return generated, cur.rowcount


def main() -> None:
    started = time.monotonic()
    radius = float(os.environ.get("STATION_RADIUS_KM", "50"))
    days = int(os.environ.get("INGEST_DAYS", "14"))
    seed = int(os.environ.get("INGEST_SEED", "42"))
    end = ingest_end()
    campgrounds = read_campgrounds()
    stations = read_stations()
    links = geo.stations_within([(c[0], c[2], c[3]) for c in campgrounds], stations, radius)
    linked = sorted({link[1] for link in links})
    by_id = {s[0]: s for s in stations}
    end_s = int(end.timestamp())
    hours = [end_s - 3600 * k for k in range(days * 24 - 1, -1, -1)]
    with db.connect() as conn:
        schema.ensure_schema(conn)
        upsert(conn, "campgrounds", ["id", "name", "lat", "lon"], campgrounds)
        upsert(conn, "stations", ["id", "lat", "lon"], stations)
        load_links(conn, links)
        generated, inserted = load_readings(
            conn, [Station(sid, by_id[sid][1], by_id[sid][2], seed) for sid in linked], hours
        )
        conn.commit()
    print(
        f"ingest: {len(campgrounds)} campgrounds, {len(stations)} stations, {len(links)} links "
        f"({len(linked)} stations within {radius:g} km), {generated} readings generated over {days} days "
        f"to {end.isoformat()}, {inserted} new, in {time.monotonic() - started:.1f}s",
        flush=True,
    )


if __name__ == "__main__":
    main()
