"""The local agent: a background daemon that supervises a stack's processes.

One agent per stack folder (a lock file; its pid in `agent.pid`). Commands talk to it over a unix
socket (mode 0600) with one JSON object per line each way: `{"op": NAME, ...}` answered by the
handler OPS names. The daemon is only that loop and its shutdown; the work is done by
units (persistence and adoption), services, instances (rollouts and their routes), jobs and cron,
and logrotate.

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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from symphony.runtimes.local.instances import Instances
from symphony.runtimes.local.jobs import Jobs
from symphony.runtimes.local.layout import Layout
from symphony.runtimes.local.logrotate import keep_rotating
from symphony.runtimes.local.procspec import ProcSpec
from symphony.runtimes.local.services import Services
from symphony.runtimes.local.switch import Switch
from symphony.runtimes.local.units import Units

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class Agent:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.units = Units(layout.agent_units, self._unit_changed)
        self.switch = Switch(layout, self.units.start, self.units.by_name)
        self.services = Services(self.units)
        self.instances = Instances(self.units, self.switch)
        self.jobs = Jobs(self.units)
        self._shutdown = asyncio.Event()
        self.ops: dict[str, Handler] = {
            "ping": self.ping,
            "status": self.status,
            "ensure": self.services.ensure,
            "restart": self.services.restart,
            "instances": self.instances.describe,
            "start_instance": self.instances.start,
            "wait_ready": self.instances.wait_ready,
            "stop_instances": self.instances.stop,
            "relabel": self.instances.relabel,
            "route": self.instances.route,
            "unroute": self.instances.unroute,
            "run_job": self.jobs.run,
            "register": self.jobs.register,
            "remove": self.remove,
            "stop_all": self.stop_all,
            "shutdown": self.shutdown,
        }

    def _unit_changed(self, spec: ProcSpec) -> None:
        # Called after each change of a unit is on disk; bound late, as the switch needs the units first.
        self.instances.unit_changed(spec)

    # ------------------------------------------------------------------ operations
    async def ping(self, _: dict[str, Any]) -> dict[str, Any]:
        return {"pid": os.getpid()}

    async def status(self, _: dict[str, Any]) -> dict[str, Any]:
        units = {}
        for name, unit in self.units.by_name.items():
            info = unit.describe()
            if unit.spec.service:
                info.update(service=unit.spec.service, in_rotation=self.switch.in_rotation(name),
                            identity=unit.spec.instance_identity())
            units[name] = info
        fronts = {n: f"http://{f.bind}:{f.port}" for n, f in self.switch.frontends.items()}
        return {"pid": os.getpid(), "units": units, "frontends": fronts}

    async def remove(self, req: dict[str, Any]) -> dict[str, Any]:
        unit = self.units.by_name.pop(req["name"], None)
        self.jobs.schedule.cancel(req["name"])
        if unit:
            await unit.stop()
        self.units.last_run.pop(req["name"], None)
        self.units.persist(req["name"])
        return {"removed": unit is not None}

    async def stop_all(self, _: dict[str, Any]) -> dict[str, Any]:
        """Stop everything (services first, databases last) and exit."""
        self.jobs.schedule.cancel_all()
        order = sorted(self.units.by_name.values(), key=lambda u: u.spec.kind == "postgres")
        others = [u for u in order if u.spec.kind != "postgres"]
        await asyncio.gather(*(u.stop() for u in others))
        await asyncio.gather(*(u.stop() for u in order if u.spec.kind == "postgres"))
        stopped = [n for n in self.units.by_name if not n.startswith("_")]
        self.units.by_name.clear()
        self.switch.forget()
        self.units.last_run.clear()
        self.units.persist_all()
        self._shutdown.set()
        return {"stopped": stopped}

    async def shutdown(self, _: dict[str, Any]) -> dict[str, Any]:
        """Exit, leaving the processes running (a new agent adopts them)."""
        self._shutdown.set()
        return {"pid": os.getpid()}

    # ------------------------------------------------------------------ server
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                try:
                    req = json.loads(line)
                    handler = self.ops.get(str(req.get("op")))
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

    async def serve(self) -> None:
        sock = self.layout.socket
        sock.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(sock.parent, 0o700)  # mkdir's mode is not applied to a folder that was already there
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
        self.units.restore(self.jobs.resume)
        try:
            await self.switch.restore()
        except Exception as exc:  # the agent must come up to report it
            print(f"agent: could not restore the traffic switch: {exc}", flush=True)
        rotate = asyncio.create_task(keep_rotating(self.layout.logs))
        print(f"agent: pid {os.getpid()} listening on {sock}", flush=True)
        async with server:
            await self._shutdown.wait()
        rotate.cancel()
        self.units.persist_all()
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
