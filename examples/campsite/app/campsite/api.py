"""The web API and page.

    python -m campsite.api     (env: DATABASE_URL, PORT 8080, HOST 127.0.0.1)

GET /healthz, GET /api/campgrounds?near=LAT,LON&q=NAME&limit=N,
GET /api/campgrounds/{id}/temperatures?date=YYYY-MM-DD, GET / (the page).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Route

from campsite import db, queries

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_LIMIT = 10
MAX_LIMIT = 100


class BadRequest(ValueError):
    """A request parameter is invalid; the message is shown to the client."""


class Database:
    """A connection pool opened on first use, so the API starts even while the database is down."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pool: ConnectionPool | None = None
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def connection(self, timeout: float = 5.0) -> Iterator[psycopg.Connection]:
        with self.lock:
            if self.pool is None:
                self.pool = ConnectionPool(
                    db.conninfo(self.url),
                    min_size=1,
                    max_size=4,
                    open=False,
                    kwargs={"connect_timeout": 5},
                )
                self.pool.open(wait=False)
        with self.pool.connection(timeout=timeout) as conn:
            yield conn

    def close(self) -> None:
        with self.lock:
            if self.pool is not None:
                self.pool.close()
                self.pool = None


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def parse_near(raw: str | None) -> tuple[float, float] | None:
    if raw is None or raw == "":
        return None
    parts = raw.split(",")
    try:
        lat, lon = (float(p) for p in parts)
    except ValueError:
        raise BadRequest("near must be LAT,LON in degrees, e.g. near=44.4,-110.6") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise BadRequest("near is out of range: latitude -90..90, longitude -180..180")
    return lat, lon


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return limit


def parse_date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest("date must be YYYY-MM-DD") from None


def hour_entries(day: date, temps: dict[datetime, tuple[float, float]]) -> list[dict]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    hours = []
    for k in range(24):
        hour = start + timedelta(hours=k)
        raw = temps.get(hour)  # (°C, °F)
        hours.append(
            {
                "hour": hour.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "temp_c": None if raw is None else round(raw[0], 2),
                "temp_f": None if raw is None else round(raw[1], 2),
            }
        )
    return hours


def healthz(request: Request) -> JSONResponse:
    try:
        with request.app.state.db.connection(timeout=3.0) as conn:
            conn.execute("SELECT 1")
    except (psycopg.Error, PoolTimeout) as exc:
        return JSONResponse({"status": "unavailable", "error": str(exc).splitlines()[0]}, status_code=503)
    return JSONResponse({"status": "ok"})


def campgrounds(request: Request) -> JSONResponse:
    try:
        near = parse_near(request.query_params.get("near"))
        limit = parse_limit(request.query_params.get("limit"))
    except BadRequest as exc:
        return error(400, str(exc))
    q = (request.query_params.get("q") or "").strip() or None
    with request.app.state.db.connection() as conn:
        rows = queries.search_campgrounds(conn, near, q, limit)
    return JSONResponse({"campgrounds": rows, "count": len(rows)})


def temperatures(request: Request) -> JSONResponse:
    campground_id: int = request.path_params["id"]
    raw_date = request.query_params.get("date")
    try:
        day = parse_date(raw_date) if raw_date else None
    except BadRequest as exc:
        return error(400, str(exc))
    with request.app.state.db.connection() as conn:
        campground = queries.get_campground(conn, campground_id)
        if campground is None:
            return error(404, f"no campground with id {campground_id}")
        span = queries.data_range(conn, campground_id)
        if day is None:
            day = span[1] if span else datetime.now(UTC).date()
        temps = queries.day_temperatures(conn, campground_id, day)
    return JSONResponse(
        {
            "campground": campground,
            "date": day.isoformat(),
            "first_date": span[0].isoformat() if span else None,
            "last_date": span[1].isoformat() if span else None,
            "hours": hour_entries(day, temps),
        }
    )


def index(request: Request) -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


def create_app(database_url: str) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.db = Database(database_url)
        try:
            yield
        finally:
            app.state.db.close()

    routes = [
        Route("/", index),
        Route("/healthz", healthz),
        Route("/api/campgrounds", campgrounds),
        Route("/api/campgrounds/{id:int}/temperatures", temperatures),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main() -> None:
    import uvicorn

    app = create_app(db.database_url())
    uvicorn.run(
        app,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8080")),
        log_level=os.environ.get("LOG_LEVEL", "info"),
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
