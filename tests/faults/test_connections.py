"""2,000 concurrent connections held open against the switch: it keeps serving new requests and the agent
stays responsive (`symphony status` answers)."""

from __future__ import annotations

import contextlib
import resource
import shutil
import socket
import tempfile
from pathlib import Path

import httpx
from _harness import Stack


def test_two_thousand_open_connections_do_not_stop_the_switch_or_the_agent():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    stack = Stack(Path(tempfile.mkdtemp(prefix="symphony-conns-")) / "stack")
    held: list[socket.socket] = []
    try:
        stack.ok("up")
        for _ in range(2000):
            s = socket.create_connection(("127.0.0.1", stack.port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # a request never finished: the worst kind
            held.append(s)
        assert len(held) == 2000
        served = 0
        for _ in range(20):
            r = httpx.get(f"http://127.0.0.1:{stack.port}/healthz", timeout=10)
            served += r.status_code == 200
        assert served == 20
        status = stack.status()  # the agent answers (the command has a deadline of its own)
        assert status["services"]["web"]["state"] == "healthy"
    finally:
        for s in held:
            with contextlib.suppress(OSError):
                s.close()
        stack.destroy()
        shutil.rmtree(stack.folder.parent, ignore_errors=True)
