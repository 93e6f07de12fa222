"""The local agent: supervises real processes, adopts them after a crash, runs jobs, stops gracefully."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from conftest import free_port, kill_leftovers, wait_until

from symphony.runtimes.local.client import AgentClient
from symphony.runtimes.local.layout import Layout
from symphony.runtimes.local.procspec import ProcSpec

SERVER = (
    "import os, http.server\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.end_headers(); self.wfile.write(b'ok')\n"
    "    def log_message(self, *a): pass\n"
    "http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n"
)


@pytest.fixture
def agent(workdir):
    layout = Layout(workdir / ".symphony")
    client = AgentClient(layout)
    client.ensure_running()
    yield client
    try:
        if client.running():
            client.call("stop_all", timeout=60)
            client.wait_gone()
    finally:
        kill_leftovers(workdir)


def _service(layout: Layout, port: int, **kw) -> ProcSpec:
    return ProcSpec(
        name="web",
        kind="service",
        argv=[sys.executable, "-c", SERVER],
        cwd="/",
        log=str(layout.log("web")),
        env={"PORT": str(port), "PATH": os.environ["PATH"]},
        port=port,
        health={"http": "/"},
        config_hash="h1",
        stop_grace=2,
        **kw,
    )


def test_socket_is_private(agent):
    assert oct(agent.layout.socket.stat().st_mode & 0o777) == "0o600"


def test_ensure_waits_until_healthy(agent):
    port = free_port()
    res = agent.call("ensure", spec=_service(agent.layout, port).to_json(), deadline=30, timeout=60)
    assert res["ok"] and res["state"] == "healthy"
    assert httpx.get(f"http://127.0.0.1:{port}/").text == "ok"


def test_same_process_identity_is_not_restarted(agent):
    port = free_port()
    first = agent.call("ensure", spec=_service(agent.layout, port).to_json(), deadline=30, timeout=60)
    spec = _service(agent.layout, port)
    spec.config_hash = "h2"  # bookkeeping only
    second = agent.call("ensure", spec=spec.to_json(), deadline=30, timeout=60)
    assert first["pids"] == second["pids"]
    assert agent.call("status")["units"]["web"]["config_hash"] == "h2"


def test_a_crashing_service_is_reported_with_its_log(agent):
    spec = _service(agent.layout, free_port())
    spec.argv = [sys.executable, "-c", "import sys; print('boom: no config'); sys.exit(5)"]
    res = agent.call("ensure", spec=spec.to_json(), deadline=10, timeout=30)
    assert not res["ok"]
    assert "exited with code 5" in res["detail"]
    assert any("boom: no config" in line for line in res["log_tail"])


def test_a_new_agent_adopts_processes_after_kill_9(agent):
    port = free_port()
    pid = agent.call("ensure", spec=_service(agent.layout, port).to_json(), deadline=30, timeout=60)["pids"][0]
    old = agent.pid()
    os.kill(old, signal.SIGKILL)
    wait_until(lambda: not agent.running())
    assert httpx.get(f"http://127.0.0.1:{port}/").text == "ok"  # the service outlives its agent
    agent.ensure_running()
    units = agent.call("status")["units"]
    assert agent.pid() != old
    assert units["web"]["pids"] == [pid]
    wait_until(lambda: agent.call("status")["units"]["web"]["state"] == "healthy")
    # An adopted process is still supervised: killed, it is restarted.
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: (u := agent.call("status")["units"]["web"])["state"] == "healthy" and u["pids"] != [pid], timeout=30)


def test_job_runs_to_completion_and_reports_failure(agent):
    layout = agent.layout
    ok = ProcSpec("j", "job", [sys.executable, "-c", "print('done')"], "/", str(layout.log("j")), env={})
    res = agent.call("run_job", spec=ok.to_json(), timeout=60)
    assert res == {"ok": True, "state": "succeeded", "exit_code": 0}
    bad = ProcSpec("j", "job", [sys.executable, "-c", "import sys; print('bad row'); sys.exit(2)"], "/", str(layout.log("j")), env={})
    res = agent.call("run_job", spec=bad.to_json(), timeout=60)
    assert not res["ok"] and res["exit_code"] == 2
    assert any("bad row" in line for line in res["log_tail"])


def test_stop_all_sends_sigterm_then_exits(agent):
    port = free_port()
    pid = agent.call("ensure", spec=_service(agent.layout, port).to_json(), deadline=30, timeout=60)["pids"][0]
    agent.call("stop_all", timeout=60)
    agent.wait_gone()
    assert not agent.running()
    wait_until(lambda: not psutil.pid_exists(pid))
    assert not Path(agent.layout.socket).exists()
