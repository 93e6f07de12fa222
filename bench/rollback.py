"""How long `symphony rollback` takes: the wall time of the whole CLI command (process start to exit).

Two stacks, one after the other, each in its own temp folder (chmod 0o755: the database runs as user
postgres), brought up with `symphony up`, then a second release of one service is deployed (that
`symphony deploy` is timed too), then `symphony rollback STACK SERVICE` runs --repeat times (default 5).
Each rollback goes back to the release before the current one, i.e. to the other release: v1, v2, v1, ...

  campsite  examples/campsite (v1, without the v2/ overlay; api on a free 127.0.0.1 port, ingest with
            INGEST_DAYS=2 to keep `up` short; api replicas and rollout settings as in the example).
            The second release of `api` is an env change (BENCH_RELEASE: "2"); no schema change.
  ledger    the stack of tests/test_rollback_window.py: tests/fixtures/ledger/app.py as `web` (2 replicas,
            rollout min_healthy 1s, healthy_deadline 20s, drain 1s), migration 01_ledger at APP_VERSION=1,
            then 02_v2 (rename, alter type, add column) and APP_VERSION=2. The migration stays open (the
            rollback window), so both releases run on their own version schema. Without a terminal (and
            without --yes) the rollback to v1 keeps the open migration: it prints that it stays open.

After each rollback the live release is checked (campsite: BENCH_RELEASE in the api processes'
environment; ledger: GET /healthz's version, asked a few times across the replicas). Reported per stack:
p50/min/max of the rollbacks' wall times (stdin not a terminal, no --yes), each rollback's seconds, exit
code and the CLI's own event lines, each with the time it arrived here (the CLI runs with
PYTHONUNBUFFERED=1, so a line arrives as it is printed) and the CLI's own clock in parentheses; from
those, `phases_s`: process start -> first event (CLI startup, lock, plan, schema checks), the time between
consecutive events summed by kind (`started -> healthy for 1s` is an instance's startup plus min_healthy;
`in rotation -> drained and stopped` the old instance's drain and stop), and last event -> exit; and their
per-kind p50 over the rollbacks. Also the service's replicas and rollout settings (seconds), and the time
of `up` and of the `deploy` that preceded (with its events). One JSON object on stdout; progress on
stderr. Everything started is stopped (`symphony down`, then any process still holding the stack folder
is killed by pid) and the temp folder removed unless --keep.

    .venv/bin/python bench/rollback.py [--repeat 5] [--only campsite|ledger] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from rollout import free_port, leftover_pids, symphony_bin  # bench/ is on sys.path when run

ROOT = Path(__file__).resolve().parent.parent
CAMPSITE = ROOT / "examples" / "campsite"
LEDGER_APP = ROOT / "tests" / "fixtures" / "ledger"
LEDGER_MIGRATIONS = ROOT / "tests" / "fixtures" / "ledger_migrations"  # the tests' own
EVENT = re.compile(r"^\s*(\d+(?:\.\d+)?)s (\S+): (.*)$")
CLI_ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}

# The spec of tests/test_rollback_window.py, trimmed to what is used here (its migrations are shared files).
LEDGER_SPEC = """\
name: ledger
services:
  db:
    postgres:
      databases: [ledger]
      migrations: ./migrations
  web:
    run: python app.py
    source: ./app
    port: {port}
    bind: 127.0.0.1
    health: /healthz
    schema: latest
    replicas: 2
    stop_grace: 3s
    rollout: {{min_healthy: 1s, healthy_deadline: 20s, drain: 1s}}
    env: {{DATABASE_URL: "${{db.url}}", APP_VERSION: "{version}"}}
"""
def log(message: str) -> None:
    print(f"[rollback {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_events(lines: list[tuple[float, str]]) -> list[dict[str, Any]]:
    """The CLI's event lines (`  1.2s web: message`) as {at_s (the CLI's clock), arrived_s (ours: since the
    process started), service, event}."""
    events = []
    for arrived, line in lines:
        match = EVENT.match(line)
        if match:
            events.append(
                {
                    "at_s": float(match[1]),
                    "arrived_s": round(arrived, 3),
                    "service": match[2],
                    "event": match[3].strip(),
                }
            )
    return events


def step(service: str, event: str) -> str:
    """An instance step without its instance and release (`web.5: started (release 7c76...)` -> `started`);
    any other event (the database's, the migration's) -> `SERVICE: other`."""
    found = re.match(r"^\S+\.\d+: (started|healthy for \S+|in rotation|drained and stopped)", event)
    if found:
        return found[1]
    return "live" if event.startswith("live:") else f"{service}: other"


def phases(events: list[dict[str, Any]], wall: float) -> dict[str, float]:
    """Where the wall time went, by the arrival times of the event lines: from the process start to the first
    event (CLI startup, lock, plan, schema checks), between consecutive events (summed by kind, e.g.
    `started -> healthy for 1s` is the instance's startup plus min_healthy), and from the last event to exit."""
    out: dict[str, float] = {}
    if not events:
        return {"whole command (no event lines)": round(wall, 3)}
    out["process start -> first event"] = events[0]["arrived_s"]
    for prev, nxt in zip(events, events[1:], strict=False):
        key = f"{step(prev['service'], prev['event'])} -> {step(nxt['service'], nxt['event'])}"
        out[key] = out.get(key, 0.0) + nxt["arrived_s"] - prev["arrived_s"]
    out["last event -> exit"] = wall - events[-1]["arrived_s"]
    return {k: round(v, 3) for k, v in out.items()}


def spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "min": None, "max": None}
    return {
        "p50": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


class Stack:
    """A stack folder driven through the symphony CLI (argv lists, never a shell)."""

    def __init__(self, folder: Path, service: str) -> None:
        self.folder = folder
        self.service = service
        self.spec_file = folder / "symphony.yaml"
        self.cli = symphony_bin()
        self.started = False

    def run(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([self.cli, *args], capture_output=True, text=True, env=CLI_ENV, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"symphony {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def timed(self, command: str, *rest: str, unbuffered: bool = True) -> dict[str, Any]:
        """`symphony COMMAND STACK REST...`: wall time from start to exit, each output line with the time it
        arrived (PYTHONUNBUFFERED, so lines come as printed; not for `up`, whose agent would inherit it)."""
        env = {**CLI_ENV, "PYTHONUNBUFFERED": "1"} if unbuffered else CLI_ENV
        lines: list[tuple[float, str]] = []
        t0 = time.perf_counter()
        with subprocess.Popen(
            [self.cli, command, str(self.folder), *rest],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append((time.perf_counter() - t0, line.rstrip("\n")))
            code = proc.wait(timeout=600)
        wall = time.perf_counter() - t0
        output = "\n".join(text for _, text in lines)
        events = parse_events(lines)
        last = output.strip().splitlines()[-1] if output.strip() else ""
        log(f"  {command} {' '.join(rest)}: exit {code} in {wall:.2f}s: {last}")
        return {
            "seconds": round(wall, 3),
            "exit_code": code,
            "last_line": last,
            "events": events,
            "phases": phases(events, wall),
            "output": output,
        }

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            self.run("status", str(self.folder), "--json", "--show-secrets").stdout
        )
        return data

    def load_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = yaml.safe_load(self.spec_file.read_text())
        return spec

    def write_spec(self, spec: dict[str, Any]) -> None:
        self.spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))

    def settings(self) -> dict[str, Any]:
        """The service's replicas and rollout settings (the spec's, over the defaults)."""
        from symphony.spec.models import RolloutSpec

        svc = self.load_spec()["services"][self.service]
        given = svc.get("rollout") or {}
        return {
            "replicas": svc.get("replicas", 1),
            "rollout_seconds": RolloutSpec(**given).model_dump(),
            "rollout_given_in_spec": given or "none (defaults)",
            "stop_grace": svc.get("stop_grace", "10s (default)"),
        }

    def up(self) -> dict[str, Any]:
        self.started = True
        result = self.timed("up", unbuffered=False)
        if result["exit_code"] != 0:
            raise RuntimeError(f"symphony up exited {result['exit_code']}:\n{result['output']}")
        return result

    def leftover_pids(self) -> list[int]:
        return leftover_pids(self.folder)

    def down(self) -> None:
        if not self.started:
            return
        log(f"symphony down {self.folder}")
        try:
            self.run("down", str(self.folder), check=False, timeout=180)
        finally:
            deadline = time.monotonic() + 10
            while self.leftover_pids() and time.monotonic() < deadline:
                time.sleep(0.2)
            for pid in self.leftover_pids():
                log(f"killing leftover pid {pid}")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def process_env(pid: int, name: str) -> str | None:
    """The value of `name` in a process's environment (None if unreadable or unset)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    for item in raw.split(b"\0"):
        key, _, value = item.partition(b"=")
        if key.decode(errors="replace") == name:
            return value.decode(errors="replace")
    return None


def rollbacks(stack: Stack, repeat: int, live: Callable[[], str | None], expect: list[str]) -> dict[str, Any]:
    """`symphony rollback STACK SERVICE` `repeat` times; after each, the live release is read with `live()`
    and compared to expect[i % 2] (the release rolled back to)."""
    runs = []
    for i in range(repeat):
        log(f"{stack.service}: rollback {i + 1}/{repeat} (to {expect[i % 2]})")
        result = stack.timed("rollback", stack.service)
        seen = live()
        result.update(
            {
                "to": expect[i % 2],
                "live_after": seen,
                "ok": result["exit_code"] == 0 and seen == expect[i % 2],
                "kept_open_migration": "stays open" in result["output"],
            }
        )
        runs.append(result)
    keys = list(dict.fromkeys(k for r in runs for k in r["phases"]))
    return {
        "rollback_seconds": spread([r["seconds"] for r in runs]),
        "failed_rollbacks": sum(1 for r in runs if not r["ok"]),
        "phases_p50_s": {k: round(statistics.median(r["phases"].get(k, 0.0) for r in runs), 3) for k in keys},
        "rollbacks": [
            {
                "to": r["to"],
                "seconds": r["seconds"],
                "exit_code": r["exit_code"],
                "live_after": r["live_after"],
                "ok": r["ok"],
                "kept_open_migration": r["kept_open_migration"],
                "events": event_lines(r["events"]),
                "phases_s": r["phases"],
                **({"output": r["output"][-2000:]} if not r["ok"] else {}),
            }
            for r in runs
        ],
    }


def event_lines(events: list[dict[str, Any]]) -> list[str]:
    """`arrived_s (the CLI's own clock) service: event`."""
    return [f"{e['arrived_s']:6.2f}s ({e['at_s']:.1f}s) {e['service']}: {e['event']}" for e in events]


def deploy_summary(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "seconds": result["seconds"],
        "exit_code": result["exit_code"],
        "last_line": result["last_line"],
        "events": event_lines(result["events"]),
        "phases_s": result["phases"],
    }


def campsite(tmp: Path, repeat: int) -> dict[str, Any]:
    folder = tmp / "campsite"
    shutil.copytree(CAMPSITE, folder, ignore=shutil.ignore_patterns(".symphony", "__pycache__", "v2"))
    stack = Stack(folder, "api")
    spec = stack.load_spec()
    api = spec["services"]["api"]
    port = free_port()
    api["port"] = port
    api["bind"] = "127.0.0.1"
    api.setdefault("env", {})["BENCH_RELEASE"] = "1"
    spec["services"]["ingest"].setdefault("env", {})["INGEST_DAYS"] = "2"
    stack.write_spec(spec)
    try:
        log(f"campsite in {folder}: symphony up")
        up = stack.up()
        spec = stack.load_spec()
        spec["services"]["api"]["env"]["BENCH_RELEASE"] = "2"
        stack.write_spec(spec)
        log("campsite: deploy of release 2 (api env BENCH_RELEASE=2)")
        deploy = stack.timed("deploy")
        if deploy["exit_code"] != 0:
            raise RuntimeError(f"symphony deploy exited {deploy['exit_code']}:\n{deploy['output']}")

        def live() -> str | None:
            svc = stack.status()["services"]["api"]
            values = {process_env(pid, "BENCH_RELEASE") for pid in svc.get("pids") or []}
            return values.pop() if len(values) == 1 else f"mixed/unknown: {sorted(map(str, values))}"

        before = live()
        if before != "2":
            raise RuntimeError(f"after the deploy the api runs BENCH_RELEASE={before!r}, not 2")
        out = rollbacks(stack, repeat, live, ["1", "2"])
        return {
            "stack": "examples/campsite (v1)",
            "service": "api",
            "change_between_releases": 'api env BENCH_RELEASE "1" -> "2" (same source; no schema change)',
            **stack.settings(),
            "up_seconds": up["seconds"],
            "deploy": deploy_summary(deploy),
            **out,
        }
    finally:
        stack.down()


def ledger(tmp: Path, repeat: int) -> dict[str, Any]:
    folder = tmp / "ledger"
    folder.mkdir()
    shutil.copytree(LEDGER_APP, folder / "app", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "migrations").mkdir()
    shutil.copy(LEDGER_MIGRATIONS / "01_ledger.yaml", folder / "migrations")
    port = free_port()
    stack = Stack(folder, "web")
    stack.spec_file.write_text(LEDGER_SPEC.format(port=port, version=1))
    try:
        log(f"ledger in {folder}: symphony up (APP_VERSION=1, 01_ledger)")
        up = stack.up()
        shutil.copy(LEDGER_MIGRATIONS / "02_v2.yaml", folder / "migrations")
        stack.spec_file.write_text(LEDGER_SPEC.format(port=port, version=2))
        log("ledger: deploy of APP_VERSION=2 with migration 02_v2 (stays open)")
        deploy = stack.timed("deploy")
        if deploy["exit_code"] != 0:
            raise RuntimeError(f"symphony deploy exited {deploy['exit_code']}:\n{deploy['output']}")

        def live() -> str | None:
            versions = set()
            for _ in range(6):  # two replicas behind the switch: ask a few times
                try:
                    versions.add(str(http_json(f"http://127.0.0.1:{port}/healthz")["version"]))
                except (OSError, ValueError, KeyError) as exc:
                    versions.add(f"error {exc!r}")
            return versions.pop() if len(versions) == 1 else f"mixed: {sorted(versions)}"

        def migrations() -> dict[str, str]:
            data = json.loads(stack.run("migrate", str(folder), "status", "--json").stdout)
            return {m["name"]: m["state"] for m in data["migrations"]}

        if live() != "2":
            raise RuntimeError(f"after the deploy web serves version {live()!r}, not 2")
        states_before = migrations()
        out = rollbacks(stack, repeat, live, ["1", "2"])
        window = stack.status().get("migrations")
        return {
            "stack": "ledger (tests/test_rollback_window.py)",
            "service": "web",
            "change_between_releases": "APP_VERSION 1 -> 2 with migration 02_v2 (open: both versions live)",
            **stack.settings(),
            "up_seconds": up["seconds"],
            "deploy": deploy_summary(deploy),
            "migrations_before_rollbacks": states_before,
            "migrations_after_rollbacks": migrations(),
            "window_after_rollbacks": window,
            **out,
        }
    finally:
        stack.down()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5, help="rollbacks per stack (default 5)")
    parser.add_argument("--only", choices=["campsite", "ledger"], default=None, help="run one stack only")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp folder (the stacks are still stopped)"
    )
    args = parser.parse_args(argv)
    wall0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="symphony-rollback-bench-"))
    tmp.chmod(0o755)  # the database runs as user postgres, who must reach the volumes
    report: dict[str, Any] = {
        "benchmark": "rollback",
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "repeat": args.repeat,
    }
    try:
        t0 = time.perf_counter()
        subprocess.run([symphony_bin(), "--version"], capture_output=True, env=CLI_ENV, check=True)
        report["cli_startup_seconds"] = round(time.perf_counter() - t0, 3)  # `symphony --version`: imports
        for name, bench in (("campsite", campsite), ("ledger", ledger)):
            if args.only in (None, name):
                try:
                    report[name] = bench(tmp, args.repeat)
                except Exception as exc:  # report the other stack still
                    log(f"{name} failed: {exc}")
                    report[name] = {"error": str(exc)[-3000:]}
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report["wall_seconds"] = round(time.monotonic() - wall0, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
