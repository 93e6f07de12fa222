"""Zero-downtime delivery on the local runtime, end to end: real instances behind the real HAProxy
switch, a real load generator in its own process counting every request."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
from conftest import ROOT, free_port, wait_until

SPEC = """\
name: ro
services:
  web:
    run: {run}
    source: ./app
    port: {port}
    health: /healthz
    replicas: {replicas}
    stop_grace: 3s
    rollout: {{min_healthy: {min_healthy}, drain: 5s, healthy_deadline: {deadline}}}
    env: {{APP_VERSION: "{version}"}}
"""


def spec(port: int, version: str = "v1", run: str = "python app.py", replicas: int = 2,
         min_healthy: str = "1s", deadline: str = "20s") -> str:
    return SPEC.format(port=port, version=version, run=run, replicas=replicas, min_healthy=min_healthy,
                       deadline=deadline)


def version(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/version", timeout=5).json()["version"]


def assert_no_request_lost(result: dict, connections: int = 8) -> None:
    assert result["requests"] > 20, result
    assert result["failed"] == 0, result["errors"]
    assert result["non_2xx"] == 0, result["status_codes"]
    assert result["connect_errors"] == 0, result


def test_rollouts_under_load_lose_no_request_and_keep_connections(make_stack, load):
    port = free_port()
    sym = make_stack(spec(port))
    sym.run("up", check=True)
    ld = load(sym.folder, f"http://127.0.0.1:{port}/version")
    for v in ("v2", "v3", "v4"):
        sym.write(spec(port, version=v))
        out = sym.run("deploy", check=True)
        assert "fully live" in out.stdout
        assert version(port) == v
    result = ld.stop()
    assert_no_request_lost(result)
    # Keep-alive clients survived every rollout: the same 8 connections throughout.
    assert result["connections_opened"] == 8 and result["reconnects"] == 0, result
    assert result["status_codes"] == {"200": result["requests"]}
    web = sym.status()["services"]["web"]
    assert web["state"] == "healthy" and len(web["instances"]) == 2


def test_blue_green_switches_all_traffic_at_once_without_losing_a_request(make_stack, load):
    port = free_port()
    blue_green = spec(port).replace("rollout: {", "rollout: {strategy: blue-green, ")
    sym = make_stack(blue_green)
    sym.run("up", check=True)
    before = {i["id"] for i in sym.status()["services"]["web"]["instances"]}
    ld = load(sym.folder, f"http://127.0.0.1:{port}/version")
    sym.write(blue_green.replace('"v1"', '"v2"'))
    out = sym.run("deploy", check=True)
    assert version(port) == "v2"
    assert_no_request_lost(ld.stop())
    after = {i["id"] for i in sym.status()["services"]["web"]["instances"]}
    assert len(after) == 2 and not (after & before)  # two new instances, the old two gone
    assert out.stdout.count("started") >= 2


def test_a_crashing_release_is_rolled_back_while_the_old_one_serves(make_stack, load):
    port = free_port()
    sym = make_stack(spec(port))
    sym.run("up", check=True)
    ld = load(sym.folder, f"http://127.0.0.1:{port}/version")
    sym.write(spec(port, version="v2", run='python -c "raise SystemExit(3)"'))
    proc = sym.run("deploy")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "rolled back" in proc.stderr and "crashed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert version(port) == "v1"
    assert_no_request_lost(ld.stop())
    web = sym.status()["services"]["web"]
    assert web["state"] == "healthy"
    assert web["last_rollout"]["status"] == "rolled back"
    assert {i["release"] for i in web["instances"]} and all(i["in_rotation"] for i in web["instances"])
    assert "rolled back" in sym.run("status").stdout


def test_a_release_failing_its_health_check_is_rolled_back_at_the_deadline(make_stack, load):
    port = free_port()
    sym = make_stack(spec(port))
    sym.run("up", check=True)
    ld = load(sym.folder, f"http://127.0.0.1:{port}/version")
    bad = spec(port, version="v2", deadline="3s").replace(
        'env: {APP_VERSION: "v2"}', 'env: {APP_VERSION: "v2", DATABASE_URL: "postgresql://x:y@127.0.0.1:1/none"}')
    sym.write(bad)
    proc = sym.run("deploy")
    assert proc.returncode == 1 and "did not pass its health check" in proc.stderr, proc.stderr
    assert version(port) == "v1"
    assert_no_request_lost(ld.stop())
    # The failed instances are gone; the old ones serve.
    assert len(sym.status()["services"]["web"]["instances"]) == 2


def test_a_crashing_replica_is_taken_out_of_rotation_and_restarted(make_stack, load):
    port = free_port()
    sym = make_stack(spec(port))
    sym.run("up", check=True)
    ld = load(sym.folder, f"http://127.0.0.1:{port}/version")
    victim = sym.status()["services"]["web"]["instances"][0]
    os.kill(victim["pids"][0], signal.SIGKILL)

    def restarted():
        inst = next(i for i in sym.status()["services"]["web"]["instances"] if i["id"] == victim["id"])
        return inst["restarts"] >= 1 and inst["state"] == "healthy"

    wait_until(restarted, timeout=30, interval=0.2)
    time.sleep(0.5)  # not synchronisation: half a second more of load against the restarted instance
    assert_no_request_lost(ld.stop())


def test_rollback_to_restores_an_earlier_release(make_stack, load):
    port = free_port()
    sym = make_stack(spec(port))
    sym.run("up", check=True)  # revision 1: v1
    sym.write(spec(port, version="v2"))
    sym.run("deploy", check=True)  # revision 2: v2
    ld = load(sym.folder, f"http://127.0.0.1:{port}/version")
    out = sym.run("rollback", "web", "--to", "1", check=True)
    assert "Rolled back web to the release of revision 1" in out.stdout
    assert version(port) == "v1"
    sym.run("rollback", "web", check=True)  # the one before the current: v2 again
    assert version(port) == "v2"
    assert_no_request_lost(ld.stop())
    history = json.loads(sym.run("history", "--json", check=True).stdout)
    assert [r["command"] for r in history[:2]] == ["rollback", "rollback"]
    bad = sym.run("rollback", "web", "--to", "0")
    assert bad.returncode == 2 and "no deployment" in bad.stderr


def test_killing_the_agent_mid_rollout_converges_on_the_next_deploy(make_stack, load):
    port = free_port()
    sym = make_stack(spec(port, min_healthy="3s"))
    sym.run("up", check=True)
    ld = load(sym.folder, f"http://127.0.0.1:{port}/version")
    sym.write(spec(port, version="v2", min_healthy="3s"))
    deploy = subprocess.Popen([sys.executable, "-m", "symphony.cli.main", "deploy"], cwd=sym.folder,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "NO_COLOR": "1"})
    try:
        # Mid-rollout: a third instance (the new release) has started beside the two old ones.
        wait_until(lambda: len(sym.status()["services"]["web"]["instances"]) >= 3, timeout=30, interval=0.1)
        agent = sym.agent_pid()
        assert agent is not None
        os.kill(agent, signal.SIGKILL)
        psutil.Process(agent).wait(timeout=10) if psutil.pid_exists(agent) else None
        deploy.wait(timeout=60)
    finally:
        if deploy.poll() is None:
            deploy.kill()
    out = sym.run("deploy", timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert version(port) == "v2"
    web = sym.status()["services"]["web"]
    assert web["state"] == "healthy" and len(web["instances"]) == 2
    assert {i["release"] for i in web["instances"]} == {web["release"]}
    assert_no_request_lost(ld.stop())
    assert ROOT  # the suite's root is importable (keeps the import honest for the fixture)
