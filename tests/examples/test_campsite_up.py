"""The campsite platform from nothing with the real CLI: `symphony up` brings db, ingest, compute and
api up, the api answers with computed temperatures, and the database keeps its rows across down/up."""

from __future__ import annotations

import re
import shutil
import time

import httpx
import pytest
from conftest import ROOT, Symphony, free_port, kill_leftovers

EXAMPLE = ROOT / "examples" / "campsite"


@pytest.fixture
def campsite(workdir):
    folder = workdir / "campsite"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".symphony", "__pycache__"))
    port = free_port()
    spec = (folder / "symphony.yaml").read_text()
    spec = re.sub(r"port: 8080", f"port: {port}", spec)
    # Two days of readings keep the test short; the default is 14.
    spec = spec.replace("job: python -m campsite.ingest\n", "job: python -m campsite.ingest\n    stop_grace: 5s\n")
    spec = spec.replace('env: {DATABASE_URL: "${db.url}"}\n  compute', 'env: {DATABASE_URL: "${db.url}", INGEST_DAYS: 2}\n  compute')
    (folder / "symphony.yaml").write_text(spec)
    sym = Symphony(folder)
    try:
        yield sym, port
    finally:
        sym.run("down", timeout=120)
        kill_leftovers(folder)


def test_campsite_comes_up_from_nothing_and_answers(campsite):
    sym, port = campsite
    started = time.time()
    sym.run("up", check=True, timeout=170)
    took = time.time() - started
    status = sym.status()["services"]
    assert {n: s["state"] for n, s in status.items()} == {
        "db": "healthy", "api": "healthy", "ingest": "succeeded", "compute": "succeeded",
    }
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
    near = httpx.get(f"{base}/api/campgrounds", params={"near": "44.3,-106.9", "limit": 3}, timeout=10).json()
    rows = near if isinstance(near, list) else near.get("campgrounds", near.get("results"))
    assert rows, near
    cid = rows[0]["id"]
    temps = httpx.get(f"{base}/api/campgrounds/{cid}/temperatures", timeout=10).json()
    values = [h for h in temps["hours"] if h and h.get("temp_c") is not None]
    assert len(temps["hours"]) == 24 and values, temps
    assert "<svg" in httpx.get(base + "/", timeout=5).text or "svg" in httpx.get(base + "/", timeout=5).text
    print(f"campsite up (2 days of readings) took {took:.1f}s")

    # Nothing to change on a second up; the rows stay across down + up.
    assert "No changes" in sym.run("up", check=True).stdout
    before = httpx.get(f"{base}/api/campgrounds/{cid}/temperatures", params={"date": temps["date"]}, timeout=10).json()
    sym.run("down", check=True)
    sym.run("up", check=True, timeout=170)
    after = httpx.get(f"{base}/api/campgrounds/{cid}/temperatures", params={"date": temps["date"]}, timeout=10).json()
    assert after["hours"] == before["hours"]
