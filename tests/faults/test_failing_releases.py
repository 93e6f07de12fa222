"""Releases and migrations that fail in the ways the rollout tests do not try: a release that hangs (never
listens), one that becomes healthy only after its deadline, and a migration whose `up` fails half-way
through its backfill. Each is rolled back by itself, under load, with no failed request, and leaves
nothing running or half-made behind."""

from __future__ import annotations

import httpx
import psycopg
import pytest
from _harness import stack as stack  # noqa: F401 (the fixture, by its name)
from conftest import free_port

SPEC = """\
name: fails
services:
  web:
    run: {run}
    source: ./app
    port: {port}
    health: /healthz
    replicas: 2
    stop_grace: 3s
    rollout: {{min_healthy: 1s, drain: 2s, healthy_deadline: 3s}}
    env: {{APP_VERSION: "{version}"}}
"""
HANG = 'python -c "import time; time.sleep(3600)"'
SLOW = "python -c \"import runpy, time; time.sleep(8); runpy.run_path('app.py', run_name='__main__')\""


def assert_no_request_lost(result: dict) -> None:
    assert result["requests"] > 20, result
    assert result["failed"] == 0 and result["non_2xx"] == 0 and result["connect_errors"] == 0, result


@pytest.mark.parametrize("run, reason", [(HANG, "did not pass its health check"),
                                         (SLOW, "did not pass its health check")], ids=["hangs", "too slow"])
def test_a_release_that_never_becomes_healthy_in_time_is_rolled_back_under_load(make_stack, load, run, reason):
    port = free_port()
    sym = make_stack(SPEC.format(run="python app.py", port=port, version="v1"))
    sym.run("up", check=True)
    ld = load(sym.folder, f"http://127.0.0.1:{port}/version")
    sym.write(SPEC.format(run=run, port=port, version="v2"))
    out = sym.run("deploy")
    assert out.returncode == 1 and "rolled back" in out.stderr and reason in out.stderr, out.stdout + out.stderr
    assert httpx.get(f"http://127.0.0.1:{port}/version", timeout=5).json()["version"] == "v1"
    assert_no_request_lost(ld.stop())
    web = sym.status()["services"]["web"]
    assert len(web["instances"]) == 2 and {i["state"] for i in web["instances"]} == {"healthy"}
    import psutil

    stragglers = [p for p in psutil.process_iter(["cmdline"]) if "time.sleep" in " ".join(p.info["cmdline"] or [])
                  and str(sym.folder) in (p.cwd() if p.is_running() else "")]
    assert stragglers == [], "the failed release's processes are still running"




FAILS_HALF_WAY = """
operations:
  - alter_column:
      table: entries
      column: amount
      type: "numeric(12,2)"
      up: "CASE WHEN id = 30000 THEN CAST('not a number' AS numeric(12,2)) ELSE CAST(amount AS numeric(12,2)) END"
      down: "CAST(amount AS text)"
"""


def test_a_migration_whose_up_fails_half_way_through_its_backfill_is_rolled_back_under_load(stack, load):
    stack.ok("up")
    with psycopg.connect(stack.url(), autocommit=True) as conn:
        conn.execute("INSERT INTO entries (account, amount) SELECT 'seed' || g, '1.00' FROM generate_series(1, 60000) g")
    ld = load(stack.folder, f"http://127.0.0.1:{stack.port}/entries")
    (stack.folder / "migrations" / "02_amount.yaml").write_text(FAILS_HALF_WAY)
    stack.write(version=1, release="b")
    out = stack.run("deploy")
    assert out.returncode != 0 and "02_amount" in out.stderr and "not a number" in out.stderr, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert_no_request_lost(ld.stop())
    with psycopg.connect(stack.url()) as conn:
        assert conn.execute("SELECT state FROM symphony_migrate.migrations WHERE name='02_amount'").fetchone() == (
            "rolled_back",)
        assert conn.execute("SELECT count(*) FROM information_schema.columns WHERE table_name='entries' "
                            "AND column_name LIKE '\\_symphony\\_%'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname='public_02_amount'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] >= 60000
    assert httpx.get(f"http://127.0.0.1:{stack.port}/healthz", timeout=5).status_code == 200
