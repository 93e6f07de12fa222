"""bench/loadgen.py against a real uvicorn server, each run as its own process."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ROOT, free_port, wait_until

LOADGEN = ROOT / "bench" / "loadgen.py"

SERVER_APP = textwrap.dedent("""\
    import asyncio
    import sys

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route


    async def root(request):
        return PlainTextResponse("ok")


    async def status(request):
        code = int(request.path_params["code"])
        return PlainTextResponse(f"status {code}", status_code=code)


    async def slow(request):
        await asyncio.sleep(0.05)
        return PlainTextResponse("slow")


    app = Starlette(routes=[Route("/", root), Route("/status/{code:int}", status), Route("/slow", slow)])

    if __name__ == "__main__":
        uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
    """)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _record_count(path: Path) -> int:
    try:
        return max(0, len(path.read_text().splitlines()) - 1)
    except OSError:
        return 0


@dataclass
class Server:
    port: int
    proc: subprocess.Popen[bytes]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Every process a test starts goes in here; all are killed at teardown, pass or fail."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        _kill(proc)


@pytest.fixture
def server(tmp_path: Path, procs: list[subprocess.Popen[bytes]]) -> Server:
    app = tmp_path / "server_app.py"
    app.write_text(SERVER_APP)
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(app), str(port)], cwd=tmp_path)
    procs.append(proc)
    wait_until(lambda: proc.poll() is not None or _accepts(port), timeout=20)
    assert proc.poll() is None, "test server exited at start"
    return Server(port, proc)


@pytest.fixture
def loadgen(tmp_path: Path, procs: list[subprocess.Popen[bytes]]) -> Callable[..., LoadgenRun]:
    counter = iter(range(1000))

    def start(url: str, *args: str) -> LoadgenRun:
        n = next(counter)
        out = tmp_path / f"loadgen-{n}.json"
        ready = tmp_path / f"loadgen-{n}.ready"
        records = tmp_path / f"loadgen-{n}.csv"
        cmd = [sys.executable, str(LOADGEN), "--url", url, "--out", str(out), "--ready-file", str(ready)]
        cmd += ["--records", str(records), *args]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(proc)
        return LoadgenRun(proc, out, ready, records)

    return start


@dataclass
class LoadgenRun:
    proc: subprocess.Popen[bytes]
    out: Path
    ready: Path
    records: Path

    def result(self, timeout: float = 30) -> dict:
        stdout, stderr = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, f"loadgen exited {self.proc.returncode}:\n{stdout!r}\n{stderr!r}"
        result = json.loads(self.out.read_text())
        assert json.loads(stdout) == result
        return result


def test_fixed_rate_counts_every_request(server: Server, loadgen: Callable[..., LoadgenRun]) -> None:
    run = loadgen(server.url("/"), "--connections", "4", "--rate", "200", "--duration", "2")
    result = run.result()
    assert 340 <= result["requests"] <= 460, result
    assert result["failed"] == 0, result
    assert result["connect_errors"] == 0, result
    assert result["non_2xx"] == 0, result
    assert result["reconnects"] == 0, result
    assert result["ok"] == result["requests"], result
    assert result["connections_opened"] == 4, result
    assert result["latency_ms"]["p99"] is not None
    assert result["latency_from_schedule_ms"]["p99"] >= result["latency_ms"]["p50"]
    lines = run.records.read_text().splitlines()
    assert lines[0] == "t_send_epoch,latency_ms,status"
    assert len(lines) - 1 == result["requests"]
    assert {line.rsplit(",", 1)[1] for line in lines[1:]} == {"200"}
    assert run.ready.exists()


def test_error_statuses_are_non_2xx(server: Server, loadgen: Callable[..., LoadgenRun]) -> None:
    result = loadgen(
        server.url("/status/500"), "--connections", "4", "--rate", "200", "--duration", "1"
    ).result()
    assert result["requests"] > 0
    assert result["non_2xx"] == result["requests"], result
    assert result["status_codes"] == {"500": result["requests"]}, result
    assert result["ok"] == 0 and result["failed"] == 0, result


def test_server_killed_mid_run_is_reported(server: Server, loadgen: Callable[..., LoadgenRun]) -> None:
    run = loadgen(
        server.url("/slow"), "--connections", "4", "--rate", "200", "--duration", "4", "--timeout", "1"
    )
    wait_until(lambda: run.ready.exists() or run.proc.poll() is not None, timeout=20)
    assert run.ready.exists(), "loadgen never became ready"
    # Let some requests complete first (the records file is written as the run goes).
    wait_until(lambda: run.proc.poll() is not None or _record_count(run.records) > 50, timeout=20)
    assert run.proc.poll() is None
    server.proc.kill()
    server.proc.wait(timeout=10)
    result = run.result()
    assert result["failed"] > 0 or result["connect_errors"] > 0, result
    assert result["failed"] >= result["connect_errors"], result
    assert result["ok"] > 0, result
    assert result["errors"], result


def test_sigterm_stops_and_writes_results(server: Server, loadgen: Callable[..., LoadgenRun]) -> None:
    run = loadgen(server.url("/"), "--connections", "2", "--rate", "100")  # no --duration: until signalled
    wait_until(lambda: run.ready.exists() or run.proc.poll() is not None, timeout=20)
    assert run.proc.poll() is None
    run.proc.terminate()
    result = run.result(timeout=10)
    assert result["requests"] >= 2 and result["failed"] == 0, result


def test_unthrottled(server: Server, loadgen: Callable[..., LoadgenRun]) -> None:
    result = loadgen(server.url("/"), "--connections", "4", "--rate", "0", "--duration", "1").result()
    assert result["rps"] > 300, result
    assert result["failed"] == 0 and result["non_2xx"] == 0, result
    assert result["latency_from_schedule_ms"] is None
