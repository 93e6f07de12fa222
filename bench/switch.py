"""What the traffic switch costs: requests/s and latency direct to one instance vs. through the switch.

Brings up a one-service stack (a minimal starlette app under uvicorn, one replica) behind Symphony's
switch (HAProxy), then runs the same load generator (bench/loadgen.py, 8 keep-alive connections)
against the instance's private port (direct), the public port (switch), and, for the choice of
mechanism, a plain asyncio byte relay (the best case of a proxy inside the agent's event loop),
alternating them `--rounds` times in the same run so all see the same machine. Two loads: unthrottled (max
requests/s) and a fixed rate (latency at a steady load). Prints one JSON object with the ratios.

    .venv/bin/python bench/switch.py [--seconds 5] [--rounds 2] [--rate 300]

Targets (issue 3): the switch keeps >= 80% of direct throughput and adds < 2 ms at p99.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOADGEN = ROOT / "bench" / "loadgen.py"

APP = '''\
import os

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request):
    return JSONResponse({"hello": "world"})


app = Starlette(routes=[Route("/", hello), Route("/healthz", hello)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
'''


RELAY = '''\
# The best case for "a proxy inside the agent": a plain asyncio byte relay (no HTTP parsing), one
# backend connection per client connection. Measured beside HAProxy to choose the switch.
import asyncio, sys

LISTEN, TARGET = int(sys.argv[1]), int(sys.argv[2])


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def handle(client_r, client_w):
    server_r, server_w = await asyncio.open_connection("127.0.0.1", TARGET)
    await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w))


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    async with server:
        await server.serve_forever()

asyncio.run(main())
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _symphony(folder: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "symphony.cli.main", *args, str(folder)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"symphony {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def _load(url: str, seconds: float, rate: int, folder: Path) -> dict[str, Any]:
    out = folder / f"load-{time.time_ns()}.json"
    proc = subprocess.run(
        [sys.executable, str(LOADGEN), "--url", url, "--connections", "8", "--rate", str(rate),
         "--duration", str(seconds), "--out", str(out)],
        capture_output=True, text=True, timeout=seconds + 60,
    )
    if proc.returncode != 0:
        raise SystemExit(f"loadgen failed: {proc.stderr}")
    return json.loads(out.read_text())


def _summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    def med(get: Callable[[dict[str, Any]], Any]) -> float:
        return round(statistics.median(float(get(r)) for r in runs), 3)

    return {
        "rps": med(lambda r: r["rps"]),
        "p50_ms": med(lambda r: r["latency_ms"]["p50"]),
        "p99_ms": med(lambda r: r["latency_ms"]["p99"]),
        "failed": sum(int(r["failed"]) for r in runs),  # type: ignore[call-overload]
        "non_2xx": sum(int(r["non_2xx"]) for r in runs),  # type: ignore[call-overload]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=int, default=300)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="symphony-bench-switch-"))
    try:
        (folder / "app").mkdir()
        (folder / "app" / "hello.py").write_text(APP)
        port = _free_port()
        (folder / "symphony.yaml").write_text(
            f"name: switch\nservices:\n  hello:\n    run: python hello.py\n    source: ./app\n"
            f"    port: {port}\n    health: /healthz\n"
        )
        _symphony(folder, "up")
        status = json.loads(_symphony(folder, "status", "--json"))
        direct_url = status["services"]["hello"]["instances"][0]["url"] + "/"
        switch_url = f"http://127.0.0.1:{port}/"
        relay_port = _free_port()
        (folder / "relay.py").write_text(RELAY)
        relay = subprocess.Popen([sys.executable, str(folder / "relay.py"), str(relay_port),
                                  direct_url.rsplit(":", 1)[1].rstrip("/")])
        relay_url = f"http://127.0.0.1:{relay_port}/"
        paths = (("direct", direct_url), ("switch", switch_url), ("python_relay", relay_url))
        results: dict[str, dict[str, list[dict[str, Any]]]] = {
            mode: {name: [] for name, _ in paths} for mode in ("unthrottled", "fixed_rate")
        }
        for _, url in paths:  # warm up every path (and wait for the relay to listen)
            _load(url, 1.0, 0, folder)
        for _ in range(args.rounds):
            for mode, rate in (("unthrottled", 0), ("fixed_rate", args.rate)):
                for path, url in paths:
                    print(f"{mode} {path}...", file=sys.stderr, flush=True)
                    results[mode][path].append(_load(url, args.seconds, rate, folder))
        out: dict[str, object] = {"benchmark": "switch", "cpus": os.cpu_count(), "seconds": args.seconds,
                                  "rounds": args.rounds, "connections": 8, "switch": "haproxy"}
        relay.terminate()
        relay.wait(timeout=10)
        for mode, runs in results.items():
            direct, switch, python = (_summary(runs[name]) for name, _ in paths)
            out[mode] = {
                "direct": direct,
                "switch": switch,
                "throughput_ratio": round(switch["rps"] / direct["rps"], 3) if direct["rps"] else None,
                "p99_added_ms": round(switch["p99_ms"] - direct["p99_ms"], 3),
                "python_relay": python,
                "python_relay_throughput_ratio": round(python["rps"] / direct["rps"], 3) if direct["rps"] else None,
                "python_relay_p99_added_ms": round(python["p99_ms"] - direct["p99_ms"], 3),
            }
        if isinstance(out["fixed_rate"], dict):
            out["fixed_rate"]["rate"] = args.rate
        print(json.dumps(out, indent=2))
    finally:
        subprocess.run([sys.executable, "-m", "symphony.cli.main", "down", str(folder)], capture_output=True,
                       timeout=120)
        pid_file = folder / ".symphony" / "agent" / "agent.pid"
        if pid_file.exists():
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
