"""The local agent: a background daemon that supervises a stack's processes.

One agent per stack folder. Commands talk to it over a unix socket (mode 0600) with one JSON
object per line each way. It persists each unit in its own file (`units/NAME.json`, mode 0600:
it holds secrets): what to run, the pid it started and a job's last result, written the moment
any of them changes, so a new agent after a crash adopts what still runs and restarts what does
not. One small file per unit keeps each write cheap however many units there are. It rotates
logs and runs scheduled jobs.

Run as: python -m symphony.runtimes.local.agent STACK_HOME
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from symphony.runtimes.local.layout import Layout
from symphony.runtimes.local.procspec import ProcSpec, free_port, tail
from symphony.runtimes.local.supervisor import Unit
from symphony.runtimes.local.switch import Switch

LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_KEEP = 3


def _write_private(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


class Agent:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.units: dict[str, Unit] = {}
        self.jobs: dict[str, dict[str, Any]] = {}  # last run of each job
        self._shutdown = asyncio.Event()
        self._cron: dict[str, asyncio.Task[None]] = {}
        self.switch = Switch(layout, self._start_unit, self.units)
        self._seq: dict[str, int] = {}

    # ------------------------------------------------------------------ persistence
    def _unit(self, spec: ProcSpec) -> Unit:
        # Persist at once on every change: a pid must be on disk before anyone can kill this agent
        # and expect adoption. An instance in rotation also tells the switch (a crash: out at once).
        def changed() -> None:
            self._persist(spec.name)
            if spec.service:
                self.switch.unit_changed(spec.name)

        return Unit(spec, changed)

    def _start_unit(self, spec: ProcSpec) -> Unit:
        unit = self._unit(spec)
        self.units[spec.name] = unit
        unit.start()
        self._persist(spec.name)
        return unit

    def _persist(self, name: str) -> None:
        unit = self.units.get(name)
        path = self.layout.agent_units / f"{name}.json"
        if unit is None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return
        running = unit.pid and unit.state not in ("stopped", "succeeded")
        proc = {"pid": unit.pid, "create_time": unit.create_time} if running else None
        _write_private(path, {"spec": unit.spec.to_json(), "proc": proc, "job": self.jobs.get(name)})

    def _persist_all(self) -> None:
        for name in self.units:
            self._persist(name)
        known = set(self.units)
        for path in self.layout.agent_units.glob("*.json"):
            if path.stem not in known:
                path.unlink(missing_ok=True)

    def _restore(self) -> None:
        """Adopt the processes a previous agent left running; start the rest."""
        for path in sorted(self.layout.agent_units.glob("*.json")):
            saved = _read_json(path)
            if "spec" not in saved:
                continue
            spec = ProcSpec.from_json(saved["spec"])
            name = spec.name
            if saved.get("job"):
                self.jobs[name] = saved["job"]
            unit = self._unit(spec)
            self.units[name] = unit
            rec = saved.get("proc")
            adopted = bool(rec) and unit.adopt(rec["pid"], rec.get("create_time"))
            if spec.kind == "job":
                if adopted:
                    unit.start(adopted=True)
                    asyncio.create_task(self._record_job(unit))
                else:
                    last = self.jobs.get(name, {})
                    unit.state = last.get("state", "stopped")
                    unit.last_exit = last.get("exit")
                self._schedule(unit)
            else:
                unit.start(adopted=adopted)
            print(f"agent: {'adopted' if adopted else 'restored'} {name}", flush=True)
        self._persist_all()

    # ------------------------------------------------------------------ operations
    async def op_ping(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"pid": os.getpid()}

    async def op_status(self, _: dict[str, Any]) -> dict[str, Any]:
        units = {}
        for name, unit in self.units.items():
            info = unit.describe()
            if unit.spec.service:
                info.update(service=unit.spec.service, in_rotation=self.switch.in_rotation(name),
                            identity=unit.spec.instance_identity())
            units[name] = info
        fronts = {n: f"http://{f.bind}:{f.port}" for n, f in self.switch.frontends.items()}
        return {"pid": os.getpid(), "units": units, "frontends": fronts}

    async def op_ensure(self, req: dict[str, Any]) -> dict[str, Any]:
        """Run this service spec; restart only if what makes the process differs. Waits until healthy."""
        spec = ProcSpec.from_json(req["spec"])
        deadline = time.time() + float(req.get("deadline", 60))
        unit = self.units.get(spec.name)
        if unit and unit.spec.identity() == spec.identity() and unit.state not in ("stopped", "failed"):
            unit.spec = spec  # same process: only the bookkeeping changed
            self._persist(spec.name)
        else:
            if unit:
                await unit.stop()
            unit = self._unit(spec)
            self.units[spec.name] = unit
            unit.start()
            self._persist(spec.name)
        return await self._await_up(unit, deadline)

    async def op_restart(self, req: dict[str, Any]) -> dict[str, Any]:
        unit = self.units[req["name"]]
        await unit.stop()
        fresh = self._unit(unit.spec)
        self.units[unit.spec.name] = fresh
        fresh.start()
        self._persist(unit.spec.name)
        return await self._await_up(fresh, time.time() + float(req.get("deadline", 60)))

    async def _await_up(self, unit: Unit, deadline: float) -> dict[str, Any]:
        want = {"healthy"} if unit.spec.health else {"running"}
        state = await unit.wait_for(want, deadline)
        if state in want and not unit.spec.health:
            # No health check: the process must at least survive its first second.
            await asyncio.sleep(min(1.0, max(0.0, deadline - time.time())))
            state = unit.state
        ok = state in want
        result = {"ok": ok, "state": state, "detail": unit.detail, "pids": unit.describe()["pids"]}
        if not ok:
            if state not in ("failed",):
                result["detail"] = f"not healthy after the deadline (state {state})"
            result["log_tail"] = tail(Path(unit.spec.log), 15)
        return result

    # ------------------------------------------------------------------ instances and the switch
    def _instances(self, service: str) -> list[Unit]:
        return [u for u in self.units.values() if u.spec.service == service]

    async def op_instances(self, req: dict[str, Any]) -> dict[str, Any]:
        out = []
        for unit in self._instances(req["service"]):
            out.append({
                "id": unit.spec.name,
                "identity": unit.spec.instance_identity(),
                "state": unit.state,
                "in_rotation": self.switch.in_rotation(unit.spec.name) or unit.spec.port is None,
                "spec": unit.spec.to_json(),
                "release": unit.spec.release,
                "pids": unit.describe()["pids"],
                "detail": unit.detail,
                "restarts": unit.restarts,
            })
        return {"instances": out}

    async def op_start_instance(self, req: dict[str, Any]) -> dict[str, Any]:
        """Start one more instance of a service on a private port; returns its id at once."""
        spec = ProcSpec.from_json(req["spec"])
        service = spec.service or spec.name
        used = [int(n.rsplit(".", 1)[1]) for n in self.units if n.startswith(service + ".") and n.rsplit(".", 1)[1].isdigit()]
        self._seq[service] = max([self._seq.get(service, 0), *used]) + 1
        spec.name = f"{service}.{self._seq[service]}"
        spec.service = service
        if spec.port is not None or req.get("private_port"):
            spec.port = free_port()
            spec.env = {**spec.env, "PORT": str(spec.port)}
            spec.url = f"http://127.0.0.1:{spec.port}"
        spec.env = {**spec.env, "SYMPHONY_INSTANCE": spec.name}
        self._start_unit(spec)
        return {"id": spec.name, "port": spec.port}

    async def op_wait_ready(self, req: dict[str, Any]) -> dict[str, Any]:
        """Wait until an instance is healthy (running, without a health check) for `min_healthy` seconds."""
        name, min_healthy = req["id"], float(req.get("min_healthy", 0))
        deadline = time.time() + float(req.get("deadline", 60))
        while True:
            unit = self.units.get(name)
            if unit is None:
                return {"ok": False, "reason": "is gone"}
            since = unit.healthy_since if unit.spec.health else (unit.started_at if unit.state == "running" else None)
            serving = unit.state == "healthy" or (unit.state == "running" and not unit.spec.health)
            if unit.state == "failed" or unit.restarts > 0:
                return {"ok": False, "reason": f"crashed ({unit.detail or 'exited'})", "log_tail": self._tail(unit)}
            if serving and since is not None and time.time() - since >= min_healthy:
                return {"ok": True}
            if time.time() >= deadline:
                what = "did not pass its health check" if unit.spec.health else "did not start"
                if serving:
                    what = f"was not healthy for {min_healthy:g}s in a row"
                return {"ok": False, "reason": f"{what} within the deadline (state {unit.state})",
                        "log_tail": self._tail(unit)}
            unit._state_changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(unit._state_changed.wait(), timeout=0.1)

    def _tail(self, unit: Unit) -> list[str]:
        lines = tail(Path(unit.spec.log), 200)
        header = f"--- symphony: starting {unit.spec.name} "
        starts = [i for i, line in enumerate(lines) if line.startswith(header)]
        return (lines[starts[-1]:] if starts else lines)[-15:]

    async def op_route(self, req: dict[str, Any]) -> dict[str, Any]:
        """Put instances in rotation behind the service's public port, and drain others out."""
        service = req["service"]
        if req.get("port"):
            await self.switch.ensure_frontend(service, int(req["port"]), req.get("bind") or "127.0.0.1")
        if service in self.switch.frontends:
            for name in req.get("add", []):
                unit = self.units.get(name)
                if unit is not None and unit.spec.port:
                    await self.switch.add(service, name, unit.spec.port)
        if req.get("drain"):
            await self.switch.drain(service, list(req["drain"]), float(req.get("drain_timeout", 30)))
        return {"ok": True}

    async def op_stop_instances(self, req: dict[str, Any]) -> dict[str, Any]:
        units = [self.units.pop(n) for n in req["ids"] if n in self.units]
        await asyncio.gather(*(u.stop() for u in units))
        for unit in units:
            self._persist(unit.spec.name)
        return {"stopped": [u.spec.name for u in units]}

    async def op_relabel(self, req: dict[str, Any]) -> dict[str, Any]:
        """Instances kept by a rollout (same process) take the newly applied config hash."""
        for unit in self._instances(req["service"]):
            if unit.spec.instance_identity() == req["identity"]:
                unit.spec.config_hash = req.get("config_hash")
                unit.spec.release = req.get("release")
                self._persist(unit.spec.name)
        return {"ok": True}

    async def op_unroute(self, req: dict[str, Any]) -> dict[str, Any]:
        """The service left the spec or lost its port: close its public port."""
        await self.switch.remove_frontend(req["service"])
        return {"ok": True}

    async def op_run_job(self, req: dict[str, Any]) -> dict[str, Any]:
        spec = ProcSpec.from_json(req["spec"])
        unit = await self._start_job(spec)
        await unit.finished()
        ok = unit.state == "succeeded"
        res: dict[str, Any] = {"ok": ok, "state": unit.state, "exit_code": unit.last_exit}
        if not ok:
            res["detail"] = unit.detail or (
                f"exited with code {unit.last_exit}" if unit.last_exit is not None else f"ended {unit.state}"
            )
            res["log_tail"] = tail(Path(spec.log), 15)
        return res

    async def _start_job(self, spec: ProcSpec) -> Unit:
        old = self.units.get(spec.name)
        if old:
            if old.state == "running":
                await old.stop()
            task = self._cron.pop(spec.name, None)
            if task:
                task.cancel()
        unit = self._unit(spec)
        self.units[spec.name] = unit
        unit.start()
        self._persist(spec.name)
        asyncio.create_task(self._record_job(unit))
        self._schedule(unit)
        return unit

    async def _record_job(self, unit: Unit) -> None:
        await unit.finished()
        self.jobs[unit.spec.name] = {
            "state": unit.state,
            "exit": unit.last_exit,
            "finished_at": time.time(),
            "config_hash": unit.spec.config_hash,
        }
        if self.units.get(unit.spec.name) is unit:
            self._persist(unit.spec.name)

    def _schedule(self, unit: Unit) -> None:
        if not unit.spec.schedule or unit.spec.name in self._cron:
            return
        self._cron[unit.spec.name] = asyncio.create_task(self._cron_loop(unit.spec.name))

    async def _cron_loop(self, name: str) -> None:
        from croniter import croniter

        while True:
            unit = self.units.get(name)
            if unit is None or not unit.spec.schedule:
                return
            itr = croniter(unit.spec.schedule, time.time())
            unit.next_run = itr.get_next(float)
            await asyncio.sleep(max(0.0, unit.next_run - time.time()))
            unit = self.units.get(name)
            if unit is None:
                return
            if unit.state != "running":
                print(f"agent: schedule runs {name}", flush=True)
                self._cron.pop(name, None)
                await self._start_job(unit.spec)
                return  # _start_job scheduled the next run

    async def op_register(self, req: dict[str, Any]) -> dict[str, Any]:
        """Keep a job's schedule without running it now."""
        spec = ProcSpec.from_json(req["spec"])
        unit = self.units.get(spec.name)
        if unit is None or unit.state != "running":
            unit = self._unit(spec)
            last = self.jobs.get(spec.name, {})
            unit.state = last.get("state", "succeeded")
            unit.last_exit = last.get("exit")
            self.units[spec.name] = unit
        self._schedule(unit)
        self._persist(spec.name)
        return {"ok": True, "next_run": unit.next_run}

    async def op_remove(self, req: dict[str, Any]) -> dict[str, Any]:
        unit = self.units.pop(req["name"], None)
        task = self._cron.pop(req["name"], None)
        if task:
            task.cancel()
        if unit:
            await unit.stop()
        self.jobs.pop(req["name"], None)
        self._persist(req["name"])
        return {"removed": unit is not None}

    async def op_stop_all(self, _: dict[str, Any]) -> dict[str, Any]:
        """Stop everything (services first, databases last) and exit."""
        for task in self._cron.values():
            task.cancel()
        self._cron.clear()
        order = sorted(self.units.values(), key=lambda u: u.spec.kind == "postgres")
        others = [u for u in order if u.spec.kind != "postgres"]
        await asyncio.gather(*(u.stop() for u in others))
        await asyncio.gather(*(u.stop() for u in order if u.spec.kind == "postgres"))
        stopped = [n for n in self.units if not n.startswith("_")]
        self.units.clear()
        self.switch.forget()
        self.jobs.clear()
        self._persist_all()
        self._shutdown.set()
        return {"stopped": stopped}

    async def op_shutdown(self, _: dict[str, Any]) -> dict[str, Any]:
        """Exit, leaving the processes running (a new agent adopts them)."""
        self._shutdown.set()
        return {"pid": os.getpid()}

    # ------------------------------------------------------------------ server
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    req = json.loads(line)
                    handler = getattr(self, f"op_{req.get('op')}", None)
                    if handler is None:
                        resp: dict[str, Any] = {"error": f"unknown op {req.get('op')!r}"}
                    else:
                        resp = await handler(req)
                except Exception as exc:  # an agent must survive a bad request
                    resp = {"error": f"{type(exc).__name__}: {exc}"}
                writer.write(json.dumps(resp).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _housekeeping(self) -> None:
        n = 0
        while True:
            await asyncio.sleep(0.5)
            n += 1
            if n % 20 == 0:
                self._rotate_logs()

    def _rotate_logs(self) -> None:
        for path in self.layout.logs.glob("*.log"):
            try:
                if path.stat().st_size < LOG_MAX_BYTES:
                    continue
                for i in range(LOG_KEEP - 1, 0, -1):
                    older = path.with_name(f"{path.name}.{i}")
                    if older.exists():
                        older.replace(path.with_name(f"{path.name}.{i + 1}"))
                data = path.read_bytes()
                path.with_name(f"{path.name}.1").write_bytes(data)
                os.truncate(path, 0)  # writers use O_APPEND, so they continue at the new end
            except OSError:
                continue

    async def serve(self) -> None:
        sock = self.layout.socket
        sock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        old_umask = os.umask(0o177)
        try:
            server = await asyncio.start_unix_server(self._handle, path=str(sock))
        finally:
            os.umask(old_umask)
        os.chmod(sock, 0o600)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._shutdown.set)
        loop.add_signal_handler(signal.SIGINT, self._shutdown.set)
        self._restore()
        try:
            await self.switch.restore()
        except Exception as exc:  # the agent must come up to report it
            print(f"agent: could not restore the traffic switch: {exc}", flush=True)
        house = asyncio.create_task(self._housekeeping())
        print(f"agent: pid {os.getpid()} listening on {sock}", flush=True)
        async with server:
            await self._shutdown.wait()
        house.cancel()
        self._persist_all()
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        print("agent: exiting", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    layout = Layout(Path(args[0]).resolve())
    layout.agent_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    layout.agent_units.mkdir(exist_ok=True, mode=0o700)
    # One agent per stack: a second one exits at once.
    lock_fd = os.open(layout.agent_dir / "agent.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("agent: another agent runs for this stack", flush=True)
        return 0
    layout.agent_pid.write_text(f"{os.getpid()}\n")
    try:
        asyncio.run(Agent(layout).serve())
    finally:
        with contextlib.suppress(FileNotFoundError):
            layout.agent_pid.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
