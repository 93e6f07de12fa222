"""The campsite v1 -> v2 upgrade (a real schema migration) under load: no request lost, no row lost,
v1 serving until the contract step."""

from __future__ import annotations

import json
import shutil

import httpx
import psycopg
import pytest
from conftest import ROOT, Symphony, free_port, kill_leftovers

EXAMPLE = ROOT / "examples" / "campsite"


def _localise(folder, port: int) -> None:
    spec = (folder / "symphony.yaml").read_text().replace("port: 8080", f"port: {port}")
    spec = spec.replace('job: python -m campsite.ingest', 'job: python -m campsite.ingest\n    stop_grace: 5s', 1)
    marker = 'source: ./app\n    env: {DATABASE_URL: "${db.url}"}\n  compute'
    assert marker in spec
    spec = spec.replace(marker, 'source: ./app\n    env: {DATABASE_URL: "${db.url}", INGEST_DAYS: 2}\n  compute')
    (folder / "symphony.yaml").write_text(spec)


@pytest.fixture
def campsite(workdir):
    folder = workdir / "campsite"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".symphony", "__pycache__"))
    port = free_port()
    _localise(folder, port)
    sym = Symphony(folder)
    try:
        yield sym, port
    finally:
        sym.run("down", timeout=120)
        kill_leftovers(folder)


def _upgrade(sym, port: int) -> None:
    shutil.copytree(EXAMPLE / "v2", sym.folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    _localise(sym.folder, port)


def _db(sym) -> str:
    return json.loads(sym.run("status", "--json", "--show-secrets", check=True).stdout)["services"]["db"]["url"]


def _hourly(url: str) -> tuple[int, list[str]]:
    with psycopg.connect(url) as conn:
        count = conn.execute("SELECT count(*) FROM campground_hourly").fetchone()[0]
        cols = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema='public' "
            "AND table_name='campground_hourly' ORDER BY ordinal_position")]
    return count, cols


def test_v1_to_v2_under_load_loses_no_request_and_no_row(campsite, load):
    sym, port = campsite
    sym.run("up", check=True, timeout=170)
    base = f"http://127.0.0.1:{port}"
    cid = httpx.get(f"{base}/api/campgrounds", params={"near": "44.3,-106.9", "limit": 1}, timeout=10).json()[
        "campgrounds"][0]["id"]
    url = f"{base}/api/campgrounds/{cid}/temperatures"
    before = httpx.get(url, timeout=10).json()
    rows_before, cols = _hourly(_db(sym))
    assert "temp" in cols and rows_before > 0
    ld = load(sym.folder, url, rate=100, connections=4)
    _upgrade(sym, port)
    out = sym.run("deploy", timeout=170)
    assert out.returncode == 0, out.stdout + out.stderr
    result = ld.stop()
    assert result["failed"] == 0 and result["non_2xx"] == 0, (result["status_codes"], result["errors"])
    after = httpx.get(url, params={"date": before["date"]}, timeout=10).json()
    assert [h["temp_c"] for h in after["hours"]] == [h["temp_c"] for h in before["hours"]]
    assert all(h["temp_f"] is None or abs(h["temp_f"] - (h["temp_c"] * 9 / 5 + 32)) < 0.02 for h in after["hours"])
    rows_after, cols = _hourly(_db(sym))
    assert rows_after >= rows_before
    assert cols == ["campground_id", "hour", "temp_c", "temp_f"]
    states = {m["name"]: m["state"] for m in json.loads(sym.run("migrate", "status", "--json").stdout)["migrations"]}
    assert states == {"00_base": "complete", "01_hourly_fahrenheit": "complete"}


def test_v1_keeps_working_while_the_migration_is_active(campsite):
    sym, port = campsite
    sym.run("up", check=True, timeout=170)
    base = f"http://127.0.0.1:{port}"
    cid = httpx.get(f"{base}/api/campgrounds", params={"near": "44.3,-106.9", "limit": 1}, timeout=10).json()[
        "campgrounds"][0]["id"]
    _upgrade(sym, port)
    sym.run("migrate", "start", check=True)  # expand only: v1 still runs
    states = {m["name"]: m["state"] for m in json.loads(sym.run("migrate", "status", "--json").stdout)["migrations"]}
    assert states["01_hourly_fahrenheit"] == "active"
    v1 = httpx.get(f"{base}/api/campgrounds/{cid}/temperatures", timeout=10)
    assert v1.status_code == 200 and any(h["temp_c"] is not None for h in v1.json()["hours"])
    url = _db(sym)
    with psycopg.connect(url + "?options=-csearch_path%3Dpublic_01_hourly_fahrenheit") as conn:
        c, f = conn.execute("SELECT temp_c, temp_f FROM campground_hourly WHERE campground_id = %s "
                            "ORDER BY hour DESC LIMIT 1", (cid,)).fetchone()
    assert abs(f - (c * 9 / 5 + 32)) < 0.02
    out = sym.run("deploy", timeout=170)
    assert out.returncode == 0, out.stdout + out.stderr
    assert _hourly(_db(sym))[1] == ["campground_id", "hour", "temp_c", "temp_f"]
