"""The core promises, end to end with the real CLI, agent and PostgreSQL: up, plan, data kept, repair."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx
import psutil
from conftest import basic_spec, free_port, wait_until


def _notes(port: int) -> list[str]:
    return httpx.get(f"http://127.0.0.1:{port}/notes", timeout=5).json()


def test_up_brings_every_kind_up_and_answers(make_stack):
    port = free_port()
    sym = make_stack(basic_spec(port))
    out = sym.run("up", check=True)
    assert "Up in" in out.stdout
    status = sym.status()
    services = status["services"]
    assert services["db"]["state"] == "healthy"
    assert services["web"]["state"] == "healthy"
    assert services["seed"]["state"] == "succeeded"
    assert services["web"]["url"] == f"http://127.0.0.1:{port}"
    assert "***" in services["db"]["url"]  # redacted by default
    assert status["agent"]["pid"] == sym.agent_pid()
    assert _notes(port) == ["seeded"]


def test_second_up_changes_nothing_and_says_so(make_stack):
    sym = make_stack(basic_spec(free_port()))
    sym.run("up", check=True)
    again = sym.run("up", check=True)
    assert "No changes" in again.stdout
    assert sym.run("plan", "--detailed-exitcode").returncode == 0


def test_plan_detailed_exitcode_is_2_after_an_edit(make_stack):
    port = free_port()
    sym = make_stack(basic_spec(port))
    sym.run("up", check=True)
    app = sym.folder / "app" / "app.py"
    app.write_text(app.read_text() + "\n# edited\n")
    proc = sym.run("plan", "--detailed-exitcode")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    plan = json.loads(sym.run("plan", "--json").stdout)
    actions = {c["service"]: c["action"] for c in plan["changes"]}
    assert actions["web"] == "update"
    assert actions["seed"] == "run"
    assert actions["db"] == "noop"
    web = next(c for c in plan["changes"] if c["service"] == "web")
    assert any("release" in r for r in web["reasons"])


def test_row_survives_down_and_up(make_stack):
    port = free_port()
    sym = make_stack(basic_spec(port))
    sym.run("up", check=True)
    httpx.post(f"http://127.0.0.1:{port}/notes", params={"text": "keep me"}, timeout=5)
    sym.run("down", check=True)
    assert sym.agent_pid() is None
    assert sym.status()["services"]["db"]["state"] == "stopped"
    sym.run("up", check=True)
    assert "keep me" in _notes(port)


def test_row_survives_kill_9_of_the_agent(make_stack):
    port = free_port()
    sym = make_stack(basic_spec(port))
    sym.run("up", check=True)
    httpx.post(f"http://127.0.0.1:{port}/notes", params={"text": "after crash"}, timeout=5)
    agent = sym.agent_pid()
    db_pid = sym.status()["services"]["db"]["pids"][0]
    os.kill(agent, signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(agent) or psutil.Process(agent).status() == psutil.STATUS_ZOMBIE)
    # The next command notices, starts a new agent, and it adopts the database that kept running.
    status = sym.status()
    assert status["agent"]["pid"] not in (None, agent)
    assert status["services"]["db"]["pids"] == [db_pid]
    assert sym.run("plan", "--detailed-exitcode").returncode == 0
    assert "after crash" in _notes(port)


def test_killed_service_is_restarted(make_stack):
    port = free_port()
    sym = make_stack(basic_spec(port))
    sym.run("up", check=True)
    pid = sym.status()["services"]["web"]["pids"][0]
    os.kill(pid, signal.SIGKILL)

    def restarted():
        web = sym.status()["services"]["web"]
        return web["state"] == "healthy" and web["pids"] and web["pids"][0] != pid and web["restarts"] >= 1

    wait_until(restarted, timeout=30, interval=0.2)
    assert _notes(port) == ["seeded"]


def test_target_touches_only_the_target_and_its_dependencies(make_stack):
    port = free_port()
    sym = make_stack(basic_spec(port))
    proc = sym.run("apply", "--target", "web", "--yes", check=True)
    assert "seed" not in proc.stdout
    services = sym.status()["services"]
    assert services["web"]["state"] == "healthy"
    assert services["db"]["state"] == "healthy"
    assert services["seed"]["state"] == "never ran"
    plan = json.loads(sym.run("plan", "--json").stdout)
    assert [c["service"] for c in plan["changes"] if c["action"] != "noop"] == ["seed"]


def test_concurrent_apply_is_refused_naming_the_holder(make_stack):
    sym = make_stack(basic_spec(free_port()))
    code = (
        "import sys,time; from symphony.state import StackLock; from pathlib import Path;"
        "l=StackLock(Path(sys.argv[1]),'apply').acquire(); print('locked', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(sym.home / "lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = sym.run("apply", "--yes")
        assert proc.returncode == 2
        assert f"pid {holder.pid}" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert not (sym.home / "volumes" / "db").exists()  # nothing was touched
    finally:
        holder.kill()
        holder.wait()


def test_destroy_needs_confirmation_and_then_deletes_volumes(make_stack):
    sym = make_stack(basic_spec(free_port()))
    sym.run("up", check=True)
    refused = sym.run("destroy")  # no terminal, no --yes
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert (sym.home / "volumes" / "db").exists()
    assert sym.status()["services"]["db"]["state"] == "healthy"
    done = sym.run("destroy", "--yes", check=True)
    assert "deleted" in done.stdout
    assert not (sym.home / "volumes" / "db").exists()
    assert sym.agent_pid() is None
