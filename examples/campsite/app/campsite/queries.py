"""The SQL the API runs, as small functions over a connection."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from campsite import schema

# Great-circle distance in km from (%(lat)s, %(lon)s) to the row's lat/lon.
DISTANCE_SQL = """
2 * 6371.0088 * asin(least(1.0, sqrt(
    power(sin(radians(c.lat - %(lat)s) / 2), 2)
    + cos(radians(%(lat)s)) * cos(radians(c.lat)) * power(sin(radians(c.lon - %(lon)s) / 2), 2)
)))
"""

HAS_DATA_SQL = "EXISTS (SELECT 1 FROM campground_hourly h WHERE h.campground_id = c.id)"
STATIONS_SQL = "(SELECT count(*) FROM campground_stations s WHERE s.campground_id = c.id)"


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_campgrounds(
    conn: psycopg.Connection, near: tuple[float, float] | None, q: str | None, limit: int
) -> list[dict]:
    """Campgrounds matching `q` (name substring), nearest to `near` first, else by name."""
    params: dict[str, object] = {"limit": limit}
    where = ""
    if q:
        where = "WHERE c.name ILIKE %(pattern)s"
        params["pattern"] = _like_pattern(q)
    if near:
        params["lat"], params["lon"] = near
        distance = f"round(({DISTANCE_SQL})::numeric, 2)::float8"
        order = "distance_km, c.id"
    else:
        distance = "NULL::float8"
        order = "c.name, c.id"
    sql = (
        f"SELECT c.id, c.name, c.lat, c.lon, {distance} AS distance_km, "
        f"{STATIONS_SQL} AS stations, {HAS_DATA_SQL} AS has_data "
        f"FROM campgrounds c {where} ORDER BY {order} LIMIT %(limit)s"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql, params).fetchall()
    if not near:
        for row in rows:
            del row["distance_km"]
    return rows


def get_campground(conn: psycopg.Connection, campground_id: int) -> dict | None:
    sql = f"SELECT c.id, c.name, c.lat, c.lon, {STATIONS_SQL} AS stations FROM campgrounds c WHERE c.id = %s"
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql, (campground_id,)).fetchone()


def data_range(conn: psycopg.Connection, campground_id: int) -> tuple[date, date] | None:
    row = conn.execute(
        "SELECT min(hour), max(hour) FROM campground_hourly WHERE campground_id = %s", (campground_id,)
    ).fetchone()
    return (row[0].date(), row[1].date()) if row and row[0] else None


def day_temperatures(conn: psycopg.Connection, campground_id: int, day: date) -> dict[datetime, tuple[float, float]]:
    """{hour (UTC): (°C, °F)} for the hours of `day` (UTC) that have a value."""
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return schema.day_temperatures(conn, campground_id, start, start + timedelta(days=1))
