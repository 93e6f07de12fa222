"""The campsite example app against a real throwaway PostgreSQL: ingest, compute, and the API."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "examples" / "campsite" / "app"
sys.path.insert(0, str(APP))

from conftest import free_port, stop_process, throwaway_postgres, wait_until  # noqa: E402

from campsite import geo  # noqa: E402

INGEST_END = "2024-07-15T12:00:00Z"


def _run(module: str, url: str, **env: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", module],
        cwd=APP,
        env={**os.environ, "DATABASE_URL": url, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"{module} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _counts(conn: psycopg.Connection) -> dict[str, int]:
    tables = ["campgrounds", "stations", "readings", "station_hourly", "campground_stations", "campground_hourly"]
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A real PostgreSQL with database campsite, ingested (2 days) and computed."""
    with throwaway_postgres("symphony-campsite-", databases=["campsite"]) as url:
        _run("campsite.ingest", url, INGEST_DAYS="2", INGEST_END=INGEST_END)
        _run("campsite.compute", url)
        yield url


@pytest.fixture(scope="module")
def api(database: str) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "campsite.api"],
        cwd=APP,
        env={**os.environ, "DATABASE_URL": database, "PORT": str(port), "LOG_LEVEL": "warning"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, f"api exited {proc.returncode}: {proc.stderr.read().decode()}"
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(base + "/healthz", timeout=2).status_code == 200
        return False

    try:
        wait_until(healthy, timeout=30, interval=0.1)
        yield base
    finally:
        stop_process(proc, timeout=15)
        if proc.stderr:
            proc.stderr.close()


def test_haversine_known_distance():
    assert geo.haversine_km(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343.5, abs=1.0)
    assert geo.haversine_km(10, 20, 10, 20) == 0


def test_grid_index_matches_brute_force():
    stations = [("a", 45.0, 179.9), ("b", 45.0, -179.9), ("c", 45.3, 0.0), ("d", -45.0, 10.0)]
    found = geo.stations_within([(1, 45.0, 179.95), (2, 45.0, 0.0)], stations, 50)
    assert {(c, s) for c, s, _ in found} == {(1, "a"), (1, "b"), (2, "c")}


def test_readings_arrive_at_irregular_minutes(database):
    with psycopg.connect(database) as conn:
        counts = _counts(conn)
        minutes = {
            int(m)
            for (m,) in conn.execute("SELECT DISTINCT date_part('minute', observed_at AT TIME ZONE 'UTC') FROM readings")
        }
        latest = conn.execute("SELECT max(observed_at) FROM readings").fetchone()[0]
    assert counts["campgrounds"] == 3259
    assert counts["stations"] == 28367
    assert counts["campground_stations"] > 3000
    assert counts["readings"] > 50_000
    assert counts["campground_hourly"] > 0
    assert len(minutes) > 10  # not all on the hour
    assert minutes & set(range(50, 60)) and minutes - {0}
    assert latest.isoformat() <= "2024-07-15T12:10:00+00:00"


def test_rerunning_ingest_and_compute_changes_nothing(database):
    with psycopg.connect(database) as conn:
        before = _counts(conn)
        sample = conn.execute("SELECT sum(temp) FROM campground_hourly").fetchone()[0]
    out = _run("campsite.ingest", database, INGEST_DAYS="2", INGEST_END=INGEST_END)
    assert " 0 new" in out
    _run("campsite.compute", database)
    with psycopg.connect(database) as conn:
        assert _counts(conn) == before
        assert conn.execute("SELECT sum(temp) FROM campground_hourly").fetchone()[0] == pytest.approx(sample)


def test_campground_value_is_the_inverse_distance_weighted_mean(database):
    with psycopg.connect(database, options="-c TimeZone=UTC") as conn:
        campground_id, hour, temp = conn.execute(
            "SELECT ch.campground_id, ch.hour, ch.temp FROM campground_hourly ch "
            "WHERE (SELECT count(*) FROM campground_stations cs WHERE cs.campground_id = ch.campground_id) >= 3 "
            "ORDER BY ch.campground_id, ch.hour LIMIT 1 OFFSET 20"
        ).fetchone()
        stations = conn.execute(
            "SELECT cs.distance_km, sh.temp FROM campground_stations cs "
            "JOIN station_hourly sh ON sh.station_id = cs.station_id AND sh.hour = %s "
            "WHERE cs.campground_id = %s",
            (hour, campground_id),
        ).fetchall()
    weights = [1 / max(distance, 0.1) ** 2 for distance, _ in stations]
    expected = sum(w * t for w, (_, t) in zip(weights, stations, strict=True)) / sum(weights)
    assert len(stations) >= 2
    assert temp == pytest.approx(expected, abs=1e-3)


def test_station_value_is_the_time_weighted_mean(database):
    with psycopg.connect(database, options="-c TimeZone=UTC") as conn:
        station_id, hour, temp = conn.execute(
            "SELECT station_id, hour, temp FROM station_hourly ORDER BY station_id, hour LIMIT 1 OFFSET 10"
        ).fetchone()
        readings = conn.execute(
            "SELECT observed_at, temp FROM readings WHERE station_id = %s "
            "AND observed_at BETWEEN %s::timestamptz - interval '60 minutes' AND %s::timestamptz + interval '60 minutes'",
            (station_id, hour, hour),
        ).fetchall()
    weights = [1 / max(abs((at - hour).total_seconds()) / 60, 1) for at, _ in readings]
    expected = sum(w * t for w, (_, t) in zip(weights, readings, strict=True)) / sum(weights)
    assert temp == pytest.approx(expected, abs=1e-3)


def test_nearest_campgrounds_sorted_by_distance(api):
    res = httpx.get(api + "/api/campgrounds", params={"near": "44.6,-110.5", "limit": 5})
    assert res.status_code == 200
    items = res.json()["campgrounds"]
    assert len(items) == 5
    distances = [c["distance_km"] for c in items]
    assert distances == sorted(distances)
    first = items[0]
    assert first["distance_km"] == pytest.approx(geo.haversine_km(44.6, -110.5, first["lat"], first["lon"]), abs=0.01)


def test_name_search_is_case_insensitive(api):
    items = httpx.get(api + "/api/campgrounds", params={"q": "middle fork", "limit": 100}).json()["campgrounds"]
    assert items and all("middle fork" in c["name"].lower() for c in items)


def test_campground_without_data_is_still_listed(api, database):
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT id, name FROM campgrounds c "
            "WHERE NOT EXISTS (SELECT 1 FROM campground_stations s WHERE s.campground_id = c.id) LIMIT 1"
        ).fetchone()
    assert row, "expected some campground with no station within 50 km"
    items = httpx.get(api + "/api/campgrounds", params={"q": row[1], "limit": 100}).json()["campgrounds"]
    listed = [c for c in items if c["id"] == row[0]]
    assert listed and listed[0]["has_data"] is False
    body = httpx.get(f"{api}/api/campgrounds/{row[0]}/temperatures").json()
    assert len(body["hours"]) == 24 and all(h["temp_c"] is None for h in body["hours"])


def test_temperatures_for_a_day(api, database):
    with psycopg.connect(database) as conn:
        (campground_id,) = conn.execute("SELECT campground_id FROM campground_hourly LIMIT 1").fetchone()
    res = httpx.get(f"{api}/api/campgrounds/{campground_id}/temperatures")
    assert res.status_code == 200
    body = res.json()
    assert body["campground"]["id"] == campground_id
    assert body["date"] == "2024-07-15"  # the latest date with data
    hours = body["hours"]
    assert len(hours) == 24 and hours[0]["hour"] == "2024-07-15T00:00:00Z" and hours[23]["hour"].endswith("T23:00:00Z")
    assert any(h["temp_c"] is None for h in hours)  # after INGEST_END
    filled = [h for h in hours if h["temp_c"] is not None]
    assert filled
    for h in filled:
        assert h["temp_f"] == pytest.approx(h["temp_c"] * 9 / 5 + 32, abs=0.01)
    earlier = httpx.get(f"{api}/api/campgrounds/{campground_id}/temperatures", params={"date": "2024-07-14"}).json()
    assert earlier["date"] == "2024-07-14"
    assert all(h["temp_c"] is not None for h in earlier["hours"][12:])


def test_errors(api):
    assert httpx.get(api + "/api/campgrounds/999999999/temperatures").status_code == 404
    for params in ({"near": "abc"}, {"near": "95,10"}, {"near": "1"}, {"limit": "0"}, {"limit": "x"}):
        res = httpx.get(api + "/api/campgrounds", params=params)
        assert res.status_code == 400, params
        assert "error" in res.json()
    res = httpx.get(api + "/api/campgrounds/1/temperatures", params={"date": "2024-13-01"})
    assert res.status_code in (400, 404)


def test_page_draws_the_curve(api):
    res = httpx.get(api + "/")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/html")
    html = res.text
    assert "<svg" in html and "<script>" in html and "createElementNS" in html
    assert not re.search(r"(src|href)=\"https?://", html)  # self-contained
