"""Zero-downtime rollouts under load: Symphony's traffic switch next to a naive restart of the same app.

What is measured (one run, one machine, printed as ONE JSON object on stdout; progress goes to stderr):

  switch         The campsite example (copied to a temp folder; api on a free 127.0.0.1 port, `replicas: 2`,
                 default rollout settings unless --strategy/--max-surge/--min-healthy/--healthy-deadline/
                 --drain are given; ingest with INGEST_DAYS=2) is brought up with `symphony up`. While
                 bench/loadgen.py sends GET /api/campgrounds?near=44.3,-106.9&limit=5 (or --path) through
                 the HAProxy switch at --rate requests/s on 8 keep-alive connections, the benchmark runs
                 K `symphony deploy`s in a row (--rollouts, default 10), alternating two releases (it
                 rewrites `bench_release.txt` in the service's source folder with "a"/"b"; any content
                 change of the source folder is a new release; the jobs sharing that folder re-run too).
                 Then ONE failing release: the service's `run:` becomes `python -c "raise SystemExit(3)"`,
                 so the new instance crashes and the deploy rolls back (expected exit code 1). Then the good
                 spec is restored and `symphony deploy` runs once more (expected: nothing to change); that
                 restore deploy is reported on its own and NOT counted in `rollouts`.
                 Reported: loadgen's strict counts (requests, failed, non_2xx, connect_errors, reconnects),
                 latency p50/p99 over the whole run, p99 of the requests sent while any deploy was running
                 (t_send inside a deploy's [start, end] wall-clock window, failing deploy included), the
                 p50/max wall time of the K good deploys, how many deploys exited 1 (`rolled_back`), and
                 whether the failing release was rolled back (exit 1, "rolled back" in the output, and the
                 service back on its previous release with every instance healthy and in rotation).
  naive_restart  The baseline, in the same run, at the same rate: `python -m campsite.api` (the venv python,
                 cwd = the temp copy's source folder, PORT = another free port, DATABASE_URL = the stack's
                 db url) is started directly, with no proxy in front, and restarted K times: SIGTERM by pid,
                 wait for exit, start again on the same port, poll /healthz until it answers (deadline).
  unthrottled    The switch run again, shorter (3 good rollouts, no failing release), with --rate 0 (each
                 connection sends its next request as soon as the previous response is read). Skip it with
                 --no-unthrottled.

Each load phase has a few seconds of steady load before the first and after the last change. Everything
started here is stopped at the end (`symphony down` on the temp stack, then any process still holding the
stack folder is killed by pid), and the temp folder is removed unless --keep is given.

    .venv/bin/python bench/rollout.py [--rollouts 10] [--rate 300] [--path /healthz] [--quick]
        [--dir STACK --service NAME] [--replicas 2] [--min-healthy 5s] [--no-unthrottled] [--keep]

--dir STACK uses that stack folder instead of the campsite example: it is copied to a temp folder (never
modified in place) and --service NAME (default api) is the service rolled out; it needs `port:` and a
`source:` inside the stack folder. --quick is a smoke run: K=3 at 100 requests/s.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CAMPSITE = ROOT / "examples" / "campsite"
LOADGEN = ROOT / "bench" / "loadgen.py"
DEFAULT_PATH = "/api/campgrounds?near=44.3,-106.9&limit=5"
CONNECTIONS = 8
SETTLE_S = 3.0  # steady load before the first and after the last change
RELEASE_FILE = "bench_release.txt"
FAILING_RUN = 'python -c "raise SystemExit(3)"'
UNTHROTTLED_ROLLOUTS = 3


def log(message: str) -> None:
    print(f"[rollout {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (the same rule as bench/loadgen.py)."""
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100.0 * len(ordered)) - 1))
    return round(ordered[index], 3)


def stop_process(proc: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM, up to `timeout` seconds to exit, then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def symphony_bin() -> str:
    local = Path(sys.executable).parent / "symphony"
    if local.exists():
        return str(local)
    found = shutil.which("symphony")
    if found is None:
        raise SystemExit("symphony CLI not found: run this with the project's venv python")
    return found


def leftover_pids(folder: Path) -> list[int]:
    """Processes still alive whose command line names `folder` or whose cwd is inside it."""
    marker = str(folder)
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
            if state == "Z":
                continue
            cwd = os.readlink(entry / "cwd") if (entry / "cwd").exists() else ""
            if marker.encode() in (entry / "cmdline").read_bytes() or cwd.startswith(marker + "/"):
                pids.add(int(entry.name))
    return sorted(pids)


class Stack:
    """A temp copy of a stack folder, driven through the symphony CLI."""

    def __init__(self, folder: Path, service: str) -> None:
        self.folder = folder
        self.service = service
        self.spec_file = folder / "symphony.yaml"
        self.cli = symphony_bin()

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([self.cli, *args, str(self.folder)], capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"symphony {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.run("status", "--json", "--show-secrets").stdout)
        return data

    def load_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = yaml.safe_load(self.spec_file.read_text())
        return spec

    def write_spec(self, spec: dict[str, Any]) -> None:
        self.spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))

    def source_dir(self) -> Path:
        svc = self.load_spec()["services"][self.service]
        source = svc.get("source")
        if not source:
            raise SystemExit(f"service {self.service!r} has no source: folder to change between releases")
        path = (self.folder / source).resolve()
        if not path.is_relative_to(self.folder.resolve()):
            raise SystemExit(f"source {source!r} of {self.service!r} is outside the stack folder")
        return path

    def deploy(self) -> dict[str, Any]:
        start = time.time()
        proc = self.run("deploy", check=False)
        end = time.time()
        output = (proc.stdout + proc.stderr).strip()
        last = output.splitlines()[-1] if output else ""
        log(f"  deploy exit {proc.returncode} in {end - start:.1f}s: {last}")
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"symphony deploy exited {proc.returncode}:\n{output}")
        return {
            "start": start,
            "end": end,
            "seconds": round(end - start, 3),
            "exit_code": proc.returncode,
            "stdout": proc.stdout,
            "stderr": proc.stderr,
        }

    def leftover_pids(self) -> list[int]:
        return leftover_pids(self.folder)


class LoadGen:
    """bench/loadgen.py in its own process, stopped by SIGTERM to its pid."""

    def __init__(self, url: str, rate: float, workdir: Path, name: str) -> None:
        self.url = url
        self.rate = rate
        self.out = workdir / f"{name}.json"
        self.records = workdir / f"{name}.csv"
        self.ready = workdir / f"{name}.ready"
        self.stderr_path = workdir / f"{name}.stderr"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, deadline_s: float = 30.0) -> None:
        cmd = [
            sys.executable, str(LOADGEN), "--url", self.url, "--connections", str(CONNECTIONS),
            "--rate", str(self.rate), "--out", str(self.out), "--records", str(self.records),
            "--ready-file", str(self.ready),
        ]  # fmt: skip
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + deadline_s
        while not self.ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"loadgen exited early: {self.stderr_path.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                raise RuntimeError("loadgen did not get every connection going in time")
            time.sleep(0.05)
        log(f"loadgen pid {self.proc.pid} running against {self.url} at rate {self.rate}")

    def stop(self) -> dict[str, Any]:
        assert self.proc is not None
        self.terminate()
        result: dict[str, Any] = json.loads(self.out.read_text())
        return result

    def terminate(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, timeout=20)

    def read_records(self) -> list[tuple[float, float, int]]:
        rows: list[tuple[float, float, int]] = []
        with open(self.records, newline="") as handle:
            for row in csv.reader(handle):
                if len(row) != 3 or row[0] == "t_send_epoch":
                    continue
                with contextlib.suppress(ValueError):
                    rows.append((float(row[0]), float(row[1]), int(row[2])))
        return rows


def window_stats(
    records: list[tuple[float, float, int]], windows: list[tuple[float, float]], label: str
) -> dict[str, Any]:
    """Counts and p99 of the requests whose send time falls inside any of the windows."""
    inside = [r for r in records if any(start <= r[0] <= end for start, end in windows)]
    answered = [lat for _t, lat, status in inside if status != 0]
    return {
        f"p99_ms_during_{label}": percentile(answered, 99),
        f"requests_during_{label}": len(inside),
        f"failed_during_{label}": sum(1 for r in inside if r[2] == 0),
        f"non_2xx_during_{label}": sum(1 for r in inside if r[2] != 0 and not 200 <= r[2] < 300),
    }


def loadgen_summary(result: dict[str, Any]) -> dict[str, Any]:
    latency = result.get("latency_ms") or {}
    return {
        "requests": result["requests"],
        "ok": result["ok"],
        "failed": result["failed"],
        "non_2xx": result["non_2xx"],
        "status_codes": result["status_codes"],
        "connect_errors": result["connect_errors"],
        "reconnects": result["reconnects"],
        "connection_close": result.get("connection_close"),
        "rps": result.get("rps"),
        "p50_ms": latency.get("p50"),
        "p99_ms": latency.get("p99"),
        "max_ms": latency.get("max"),
        "errors": result.get("errors") or {},
    }


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_healthy(url: str, deadline_s: float, proc: subprocess.Popen[bytes] | None = None) -> float:
    start = time.monotonic()
    while not http_ok(url):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        if time.monotonic() - start > deadline_s:
            raise RuntimeError(f"{url} did not answer within {deadline_s}s")
        time.sleep(0.02)
    return time.monotonic() - start


def service_release_ok(stack: Stack, expected_release: str | None) -> bool:
    svc = stack.status()["services"][stack.service]
    instances = svc.get("instances") or []
    return (
        svc.get("release") == expected_release
        and bool(instances)
        and all(i.get("release") == expected_release for i in instances)
        and all(i.get("state") == "healthy" and i.get("in_rotation") for i in instances)
    )


def switch_run(
    stack: Stack,
    url: str,
    rate: float,
    rollouts: int,
    with_failing: bool,
    workdir: Path,
    name: str,
    counter: list[int],
) -> dict[str, Any]:
    source = stack.source_dir()
    loadgen = LoadGen(url, rate, workdir, name)
    deploys: list[dict[str, Any]] = []
    failing: dict[str, Any] | None = None
    restore: dict[str, Any] | None = None
    failed_rolled_back: bool | None = None
    try:
        loadgen.start()
        time.sleep(SETTLE_S)
        for i in range(rollouts):
            counter[0] += 1
            (source / RELEASE_FILE).write_text("ab"[counter[0] % 2] + "\n")
            log(f"{name}: rollout {i + 1}/{rollouts}")
            deploys.append(stack.deploy())
        if with_failing:
            good_text = stack.spec_file.read_text()
            release_before = stack.status()["services"][stack.service].get("release")
            spec = stack.load_spec()
            spec["services"][stack.service]["run"] = FAILING_RUN
            stack.write_spec(spec)
            log(f"{name}: failing release ({FAILING_RUN})")
            try:
                failing = stack.deploy()
            finally:
                stack.spec_file.write_text(good_text)
            output = failing["stdout"] + failing["stderr"]
            failed_rolled_back = (
                failing["exit_code"] == 1
                and "rolled back" in output
                and service_release_ok(stack, release_before)
            )
            log(f"{name}: restore deploy (good spec back)")
            restore = stack.deploy()
        time.sleep(SETTLE_S)
        result = loadgen.stop()
    finally:
        loadgen.terminate()
    records = loadgen.read_records()
    every = deploys + [d for d in (failing, restore) if d is not None]
    seconds = [d["seconds"] for d in deploys]
    out = loadgen_summary(result)
    out.update(window_stats(records, [(d["start"], d["end"]) for d in every], "rollout"))
    out.update(
        {
            "rollouts": len(deploys),
            "rollout_seconds_p50": round(statistics.median(seconds), 3) if seconds else None,
            "rollout_seconds_max": round(max(seconds), 3) if seconds else None,
            "rollout_exit_codes": [d["exit_code"] for d in deploys],
            "rolled_back": sum(1 for d in every if d["exit_code"] == 1),
        }
    )
    if with_failing:
        assert failing is not None and restore is not None
        out["failed_release_rolled_back"] = failed_rolled_back
        out["failed_release"] = {
            "run": FAILING_RUN,
            "exit_code": failing["exit_code"],
            "seconds": failing["seconds"],
            "message": next(
                (ln.strip() for ln in failing["stderr"].splitlines() if "rolled back" in ln), None
            ),
        }
        out["restore_deploy"] = {
            "counted_in_rollouts": False,
            "exit_code": restore["exit_code"],
            "seconds": restore["seconds"],
            "no_changes": "No changes" in restore["stdout"] + restore["stderr"],
        }
    return out


def naive_run(
    source: Path, database_url: str, path: str, rate: float, restarts: int, workdir: Path
) -> dict[str, Any]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", DATABASE_URL=database_url)
    env.pop("PYTHONPATH", None)
    app_log = open(workdir / "naive_app.log", "ab")  # noqa: SIM115 - closed in finally
    proc: subprocess.Popen[bytes] | None = None

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "campsite.api"], cwd=source, env=env, stdout=app_log, stderr=app_log
        )

    loadgen = LoadGen(base + path, rate, workdir, "naive")
    windows: list[tuple[float, float]] = []
    took: list[float] = []
    try:
        proc = start()
        wait_healthy(base + "/healthz", 60, proc)
        log(f"naive: app pid {proc.pid} on port {port}")
        loadgen.start()
        time.sleep(SETTLE_S)
        for i in range(restarts):
            t0 = time.time()
            stop_process(proc, timeout=30)
            proc = start()
            wait_healthy(base + "/healthz", 60, proc)
            t1 = time.time()
            windows.append((t0, t1))
            took.append(t1 - t0)
            log(f"naive: restart {i + 1}/{restarts} in {t1 - t0:.2f}s (pid {proc.pid})")
        time.sleep(SETTLE_S)
        result = loadgen.stop()
    finally:
        loadgen.terminate()
        if proc is not None:
            stop_process(proc, timeout=15)
        app_log.close()
    out = loadgen_summary(result)
    out.update(window_stats(loadgen.read_records(), windows, "restart"))
    out.update(
        {
            "restarts": len(took),
            "restart_seconds_p50": round(statistics.median(took), 3) if took else None,
            "restart_seconds_max": round(max(took), 3) if took else None,
        }
    )
    return out


def prepare(args: argparse.Namespace, folder: Path) -> Stack:
    origin = Path(args.dir).resolve() if args.dir else CAMPSITE
    if not (origin / "symphony.yaml").exists():
        raise SystemExit(f"no symphony.yaml in {origin}")
    shutil.copytree(origin, folder, ignore=shutil.ignore_patterns(".symphony", "__pycache__"), symlinks=True)
    stack = Stack(folder, args.service)
    spec = stack.load_spec()
    services = spec.get("services") or {}
    svc = services.get(args.service)
    if svc is None or "run" not in svc or "port" not in svc:
        raise SystemExit(f"service {args.service!r} must be a run service with a port:")
    svc["port"] = free_port()
    svc["replicas"] = args.replicas
    rollout = {
        key: value
        for key, value in (
            ("strategy", args.strategy),
            ("max_surge", args.max_surge),
            ("min_healthy", args.min_healthy),
            ("healthy_deadline", args.healthy_deadline),
            ("drain", args.drain),
        )
        if value is not None
    }
    if rollout:
        svc["rollout"] = {**(svc.get("rollout") or {}), **rollout}
    if not args.dir and "ingest" in services:
        services["ingest"].setdefault("env", {})["INGEST_DAYS"] = "2"
    stack.write_spec(spec)
    stack.source_dir()  # fail early if the source folder is unusable
    return stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument(
        "--rollouts", type=int, default=None, help="good rollouts K (default 10; 3 with --quick)"
    )
    parser.add_argument("--rate", type=float, default=None, help="requests/s (default 300; 100 with --quick)")
    parser.add_argument("--path", default=DEFAULT_PATH, help=f"request path (default {DEFAULT_PATH})")
    parser.add_argument("--dir", default=None, help="a stack folder to use instead of examples/campsite")
    parser.add_argument("--service", default="api", help="the service rolled out (default api)")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--strategy", choices=["rolling", "blue-green"], default=None)
    parser.add_argument("--max-surge", type=int, default=None)
    parser.add_argument("--min-healthy", default=None, help="e.g. 5s")
    parser.add_argument("--healthy-deadline", default=None, help="e.g. 60s")
    parser.add_argument("--drain", default=None, help="e.g. 30s")
    parser.add_argument("--quick", action="store_true", help="smoke run: K=3, rate 100")
    parser.add_argument("--no-unthrottled", action="store_true", help="skip the --rate 0 switch run")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (stack is still stopped)")
    args = parser.parse_args(argv)
    rollouts = args.rollouts if args.rollouts is not None else (3 if args.quick else 10)
    rate = args.rate if args.rate is not None else (100.0 if args.quick else 300.0)

    wall0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="symphony-rollout-bench-"))
    tmp.chmod(0o755)  # the database runs as user postgres, who must reach the volumes
    folder = tmp / "stack"
    workdir = tmp / "work"
    workdir.mkdir()
    stack: Stack | None = None
    up = False
    report: dict[str, Any] = {}
    try:
        stack = prepare(args, folder)
        log(f"stack in {folder}; symphony up")
        up = True
        t0 = time.monotonic()
        stack.run("up")
        up_seconds = time.monotonic() - t0
        status = stack.status()
        svc = status["services"][stack.service]
        url = svc["url"].rstrip("/")
        db_url = next(
            (s["url"] for s in status["services"].values() if s.get("kind") == "postgres" and s.get("url")),
            None,
        )
        log(f"up in {up_seconds:.1f}s; {stack.service} at {url}")
        counter = [0]
        switch = switch_run(stack, url + args.path, rate, rollouts, True, workdir, "switch", counter)
        naive: dict[str, Any] | None = None
        if db_url is None:
            log("no postgres service in the stack: naive restart baseline skipped")
        else:
            naive = naive_run(stack.source_dir(), db_url, args.path, rate, rollouts, workdir)
        unthrottled: dict[str, Any] | None = None
        if not args.no_unthrottled:
            unthrottled = switch_run(
                stack, url + args.path, 0, UNTHROTTLED_ROLLOUTS, False, workdir, "unthrottled", counter
            )
        report = {
            "benchmark": "rollout",
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "rate": rate,
            "connections": CONNECTIONS,
            "path": args.path,
            "stack": str(args.dir) if args.dir else "examples/campsite",
            "service": stack.service,
            "replicas": args.replicas,
            "rollout_settings": stack.load_spec()["services"][stack.service].get("rollout") or "defaults",
            "up_seconds": round(up_seconds, 3),
            "switch": switch,
            "naive_restart": naive,
            "unthrottled": unthrottled,
        }
    finally:
        if stack is not None and up:
            log("symphony down")
            try:
                stack.run("down", check=False)
            finally:
                deadline = time.monotonic() + 10
                while stack.leftover_pids() and time.monotonic() < deadline:
                    time.sleep(0.2)
                for pid in stack.leftover_pids():
                    log(f"killing leftover pid {pid}")
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report["wall_seconds"] = round(time.monotonic() - wall0, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
