"""The campsite v1 -> v2 upgrade (a real schema migration, with the real CLI and processes): under load
no request fails and no row is lost; v1 keeps serving while the migration is active; and a fresh v2
install gets its tables from the migrations."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml
from conftest import ROOT, Symphony, free_port, kill_leftovers

EXAMPLE = ROOT / "examples" / "campsite"
V2 = "public_01_hourly_fahrenheit"  # the version schema of the last v2 migration
V2_COLUMNS = ["campground_id", "hour", "temp_c", "temp_f"]


def _localise(folder: Path, port: int, end: str) -> None:
    """The test's edits to the spec: a free port, two days of readings ending at a fixed hour (so a
    re-run of ingest during the deploy adds nothing even if the clock passes an hour)."""
    spec = (folder / "symphony.yaml").read_text().replace("port: 8080", f"port: {port}")
    spec = spec.replace("job: python -m campsite.ingest\n", "job: python -m campsite.ingest\n    stop_grace: 5s\n", 1)
    marker = 'source: ./app\n    env: {DATABASE_URL: "${db.url}"}\n  compute'
    assert marker in spec and "stop_grace" in spec, spec
    spec = spec.replace(
        marker, f'source: ./app\n    env: {{DATABASE_URL: "${{db.url}}", INGEST_DAYS: 2, INGEST_END: "{end}"}}\n  compute'
    )
    (folder / "symphony.yaml").write_text(spec)


class Campsite:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sym = Symphony(folder)
        self.port = free_port()
        self.end = datetime.now(UTC).strftime("%Y-%m-%dT%H:00:00Z")
        self.base = f"http://127.0.0.1:{self.port}"
        _localise(folder, self.port, self.end)

    def upgrade(self) -> None:
        """What the README tells the user: copy v2/. over the stack folder (then the test's edits again)."""
        shutil.copytree(EXAMPLE / "v2", self.folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        _localise(self.folder, self.port, self.end)

    def db_url(self) -> str:
        status = json.loads(self.sym.run("status", "--json", "--show-secrets", check=True).stdout)
        return status["services"]["db"]["url"]

    def migrations(self) -> dict[str, str]:
        out = json.loads(self.sym.run("migrate", "status", "--json", check=True).stdout)
        return {m["name"]: m["state"] for m in out["migrations"]}

    def campground_with_data(self) -> int:
        found = httpx.get(f"{self.base}/api/campgrounds", params={"near": "44.3,-106.9", "limit": 20}, timeout=10)
        found.raise_for_status()
        return next(c["id"] for c in found.json()["campgrounds"] if c["has_data"])

    def temperatures(self, cid: int, day: str | None = None) -> dict:
        params = {"date": day} if day else {}
        resp = httpx.get(f"{self.base}/api/campgrounds/{cid}/temperatures", params=params, timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture
def campsite(workdir):
    folder = workdir / "campsite"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".symphony", "__pycache__", "v2"))
    site = Campsite(folder)
    try:
        yield site
    finally:
        site.sym.run("down", timeout=120)
        kill_leftovers(folder)


def _hourly(url: str, schema: str = "public") -> tuple[int, list[str]]:
    """campground_hourly's row count and columns (physical table in `public`, else the version's view)."""
    with psycopg.connect(url) as conn:
        count = conn.execute(f'SELECT count(*) FROM "{schema}".campground_hourly').fetchone()[0]
        cols = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'campground_hourly' ORDER BY ordinal_position", (schema,))]
    return count, cols


def _version(url: str, schema: str) -> str:
    """A connection URL that reads and writes through version schema `schema`, as a v2 service's does."""
    return url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"


def _same_values(before: dict, after: dict) -> None:
    """Same hours and °C; °F stored by v2 is rounded from the unrounded °C (v1 rounded °C first), so it
    may differ from v1's by one unit in the last place."""
    assert [h["hour"] for h in after["hours"]] == [h["hour"] for h in before["hours"]]
    assert [h["temp_c"] for h in after["hours"]] == [h["temp_c"] for h in before["hours"]]
    for old, new in zip(before["hours"], after["hours"], strict=True):
        assert (old["temp_f"] is None) == (new["temp_f"] is None), (old, new)
        if old["temp_f"] is not None:
            assert abs(new["temp_f"] - old["temp_f"]) <= 0.0101, (old, new)


def test_v1_to_v2_under_load_loses_no_request_and_no_row(campsite, load):
    campsite.sym.run("up", check=True, timeout=170)
    cid = campsite.campground_with_data()
    before = campsite.temperatures(cid)
    assert any(h["temp_c"] is not None for h in before["hours"]), before
    url = campsite.db_url()
    rows_before, cols = _hourly(url)
    assert cols == ["campground_id", "hour", "temp"] and rows_before > 0

    ld = load(campsite.folder, f"{campsite.base}/api/campgrounds/{cid}/temperatures", rate=100, connections=4)
    campsite.upgrade()
    out = campsite.sym.run("deploy", timeout=170)
    result = ld.stop()
    assert out.returncode == 0, out.stdout + out.stderr
    print(out.stdout, {k: result[k] for k in ("requests", "failed", "non_2xx", "connect_errors", "status_codes")})
    assert result["requests"] > 0 and result["connect_errors"] == 0, result
    assert result["failed"] == 0 and result["non_2xx"] == 0, (result["status_codes"], result["errors"])

    _same_values(before, campsite.temperatures(cid, before["date"]))
    # v1 ran on the plain tables: the migration stays open (the rollback window), so v1 can come back.
    assert campsite.migrations() == {"00_base": "complete", "01_hourly_fahrenheit": "active"}
    ld = load(campsite.folder, f"{campsite.base}/api/campgrounds/{cid}/temperatures", rate=100, connections=4)
    back = campsite.sym.run("rollback", "api", timeout=170)
    assert back.returncode == 0, back.stdout + back.stderr
    _same_values(before, campsite.temperatures(cid, before["date"]))  # v1 again, on the plain tables
    forward = campsite.sym.run("deploy", timeout=170)
    assert forward.returncode == 0, forward.stdout + forward.stderr
    result = ld.stop()
    assert result["failed"] == 0 and result["non_2xx"] == 0, (result["status_codes"], result["errors"])
    campsite.sym.run("migrate", "complete", check=True)  # closes the window: v1's shape goes
    rows_after, cols = _hourly(url)
    assert rows_after >= rows_before
    assert cols == V2_COLUMNS  # temp renamed to temp_c, temp_f added, no temp left
    assert campsite.migrations() == {"00_base": "complete", "01_hourly_fahrenheit": "complete"}
    assert {s["state"] for s in json.loads(campsite.sym.run("status", "--json", check=True).stdout)[
        "services"].values()} <= {"healthy", "succeeded"}

    with psycopg.connect(url) as conn:
        nulls = conn.execute("SELECT count(*) FROM campground_hourly WHERE temp_f IS NULL").fetchone()[0]
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'campground_hourly'")}
    assert nulls == 0 and "campground_hourly_hour_idx" in indexes

    # v2's compute writes with INSERT ... ON CONFLICT through the version schema's (auto-updatable) views.
    with psycopg.connect(_version(url, V2)) as conn:
        hour = conn.execute("SELECT max(hour) FROM campground_hourly WHERE campground_id = %s", (cid,)).fetchone()[0]
        changed = conn.execute(
            "INSERT INTO campground_hourly (campground_id, hour, temp_c, temp_f) VALUES (%s, %s, 10, 50) "
            "ON CONFLICT (campground_id, hour) DO UPDATE SET temp_c = EXCLUDED.temp_c, temp_f = EXCLUDED.temp_f",
            (cid, hour),
        ).rowcount
        assert changed == 1
        assert conn.execute("SELECT temp_c, temp_f FROM campground_hourly WHERE campground_id = %s AND hour = %s",
                            (cid, hour)).fetchone() == (10.0, 50.0)
        conn.rollback()


def test_v1_keeps_working_while_the_migration_is_active(campsite):
    campsite.sym.run("up", check=True, timeout=170)
    cid = campsite.campground_with_data()
    before = campsite.temperatures(cid)
    campsite.upgrade()
    campsite.sym.run("migrate", "start", check=True)  # expand only: v1 still runs, on the plain tables
    assert campsite.migrations() == {"00_base": "complete", "01_hourly_fahrenheit": "active"}

    v1 = campsite.temperatures(cid, before["date"])
    assert v1["hours"] == before["hours"] and any(h["temp_c"] is not None for h in v1["hours"])
    url = campsite.db_url()
    physical = _hourly(url)[1]  # still v1's shape (plus the new column under an internal name)
    assert physical[:3] == ["campground_id", "hour", "temp"] and not {"temp_c", "temp_f"} & set(physical)
    count, cols = _hourly(url, V2)
    assert cols == V2_COLUMNS and count == _hourly(url)[0]
    with psycopg.connect(_version(url, V2)) as conn:
        c, f = conn.execute("SELECT temp_c, temp_f FROM campground_hourly WHERE campground_id = %s "
                            "ORDER BY hour DESC LIMIT 1", (cid,)).fetchone()
        assert abs(f - (c * 9 / 5 + 32)) < 0.006
        assert conn.execute("SELECT count(*) FROM campground_hourly WHERE temp_f IS NULL").fetchone()[0] == 0
    # A v1 write while the migration is active: the trigger keeps temp_f in step.
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE campground_hourly SET temp = 20 WHERE campground_id = %s AND hour = "
                     "(SELECT max(hour) FROM campground_hourly WHERE campground_id = %s)", (cid, cid))
    with psycopg.connect(_version(url, V2)) as conn:
        assert conn.execute("SELECT temp_c, temp_f FROM campground_hourly WHERE campground_id = %s "
                            "ORDER BY hour DESC LIMIT 1", (cid,)).fetchone() == (20.0, 68.0)

    out = campsite.sym.run("deploy", timeout=170)
    assert out.returncode == 0, out.stdout + out.stderr
    assert campsite.migrations() == {"00_base": "complete", "01_hourly_fahrenheit": "active"}  # the window
    campsite.sym.run("migrate", "complete", check=True)
    assert campsite.migrations() == {"00_base": "complete", "01_hourly_fahrenheit": "complete"}
    assert _hourly(url)[1] == V2_COLUMNS
    # v2's compute ran in the deploy (through the views, with ON CONFLICT) and put back the hour v1 overwrote.
    _same_values(before, campsite.temperatures(cid, before["date"]))


def test_fresh_v2_install_gets_its_tables_from_the_migrations(campsite):
    campsite.upgrade()
    campsite.sym.run("up", check=True, timeout=170)
    assert campsite.migrations() == {"00_base": "complete", "01_hourly_fahrenheit": "complete"}
    states = {n: s["state"] for n, s in campsite.sym.status()["services"].items()}
    assert states == {"db": "healthy", "api": "healthy", "ingest": "succeeded", "compute": "succeeded"}
    assert _hourly(campsite.db_url())[1] == V2_COLUMNS
    hours = campsite.temperatures(campsite.campground_with_data())["hours"]
    assert len(hours) == 24 and any(h["temp_c"] is not None for h in hours)
    assert all(h["temp_f"] is None or abs(h["temp_f"] - (h["temp_c"] * 9 / 5 + 32)) < 0.02 for h in hours)


def test_v2_app_stops_clearly_without_the_migrations(dsn):
    """v2 creates no table: on a database without the migrations, its check names what is missing."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("campsite_v2_schema",
                                                  EXAMPLE / "v2" / "app" / "campsite" / "schema.py")
    schema = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(schema)
    with psycopg.connect(dsn) as conn, pytest.raises(SystemExit, match="tables missing in schema public: campground_hourly"):
        schema.ensure_schema(conn)
    with psycopg.connect(_version(dsn, V2)) as conn, pytest.raises(SystemExit, match="no schema of the search_path"):
        schema.ensure_schema(conn)
    with psycopg.connect(dsn, autocommit=True) as conn:  # v1's tables: still not what v2 reads
        base = yaml.safe_load((EXAMPLE / "v2" / "migrations" / "00_base.yaml").read_text())
        conn.execute(base["operations"][0]["sql"]["up"])
    with psycopg.connect(dsn) as conn, pytest.raises(SystemExit, match="no temp_c/temp_f"):
        schema.ensure_schema(conn)
