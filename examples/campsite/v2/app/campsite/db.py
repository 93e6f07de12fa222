"""Connecting to PostgreSQL (v2: the tables come from the stack's migrations, not from the app)."""

from __future__ import annotations

import os

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

TABLES = ("campgrounds", "stations", "readings", "station_hourly", "campground_stations", "campground_hourly")


def database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("DATABASE_URL is not set")
    return url


def connect(url: str | None = None) -> psycopg.Connection:
    """A new connection to DATABASE_URL (or `url`) in UTC; the caller commits.

    The time zone is added to the URL's own `options` (which may select a schema version), not
    passed as a separate `options`, which would replace them.
    """
    return psycopg.connect(conninfo(url or database_url()), connect_timeout=10)


def conninfo(url: str) -> str:
    """`url` with the session in UTC, keeping the URL's own options (they may select a schema version)."""
    params = conninfo_to_dict(url)
    params["options"] = (str(params.get("options") or "") + " -c TimeZone=UTC").strip()
    return make_conninfo(**params)


def ensure_schema(conn: psycopg.Connection) -> None:
    """Check that the migrations made the tables this version uses; exit with a clear message if not.

    v2 creates no table itself: the stack's migrations run before the app (`symphony deploy`), and
    the URL's search_path selects the schema version (views shaped as v2 expects).
    """
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    if schema is None:
        path = conn.execute("SHOW search_path").fetchone()[0]
        raise SystemExit(f"no schema of the search_path ({path}) exists: run the stack's migrations "
                         "(symphony deploy)")
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s", (schema,)
    ).fetchall()
    missing = sorted(set(TABLES) - {table for table, _ in rows})
    if missing:
        raise SystemExit(f"tables missing in schema {schema}: {', '.join(missing)} (the stack's migrations "
                         "create them: symphony deploy)")
    hourly = {column for table, column in rows if table == "campground_hourly"}
    if not {"temp_c", "temp_f"} <= hourly:
        raise SystemExit(f"campground_hourly in schema {schema} has no temp_c/temp_f: this is the v1 schema "
                         "(run the migrations, or set `schema: latest` on this service)")
