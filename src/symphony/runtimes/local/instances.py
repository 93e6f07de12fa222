"""A service's instances, for a rollout: units named SERVICE.N on private ports, started, awaited,
relabelled and stopped one by one, and put in or out of rotation behind the service's public port
(the traffic switch)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from symphony.runtimes.local.procspec import ProcSpec, free_port, instance_name, instance_seq, tail
from symphony.runtimes.local.supervisor import Unit
from symphony.runtimes.local.switch import Switch
from symphony.runtimes.local.units import Units


class Instances:
    def __init__(self, units: Units, switch: Switch) -> None:
        self.units = units
        self.switch = switch
        self._seq: dict[str, int] = {}  # the last instance number given out, per service

    def of(self, service: str) -> list[Unit]:
        return [u for u in self.units.by_name.values() if u.spec.service == service]

    async def describe(self, req: dict[str, Any]) -> dict[str, Any]:
        """Each instance of a service: its state, identity, release and whether it is in rotation."""
        out = []
        for unit in self.of(req["service"]):
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

    async def start(self, req: dict[str, Any]) -> dict[str, Any]:
        """Start one more instance of a service on a private port; returns its id at once."""
        spec = ProcSpec.from_json(req["spec"])
        service = spec.service or spec.name
        used = [seq for n in self.units.by_name if n.startswith(service + ".") and (seq := instance_seq(n)) is not None]
        self._seq[service] = max([self._seq.get(service, 0), *used]) + 1
        spec.name = instance_name(service, self._seq[service])
        spec.service = service
        if spec.port is not None or req.get("private_port"):
            spec.port = free_port()
            spec.env = {**spec.env, "PORT": str(spec.port)}
            spec.url = f"http://127.0.0.1:{spec.port}"
        spec.env = {**spec.env, "SYMPHONY_INSTANCE": spec.name}
        self.units.start(spec)
        return {"id": spec.name, "port": spec.port}

    async def wait_ready(self, req: dict[str, Any]) -> dict[str, Any]:
        """Wait until an instance is healthy (running, without a health check) for `min_healthy` seconds."""
        name, min_healthy = req["id"], float(req.get("min_healthy", 0))
        deadline = time.time() + float(req.get("deadline", 60))
        while True:
            unit = self.units.by_name.get(name)
            if unit is None:
                return {"ok": False, "reason": "is gone"}
            since = unit.healthy_since if unit.spec.health else (unit.started_at if unit.state == "running" else None)
            serving = unit.state == "healthy" or (unit.state == "running" and not unit.spec.health)
            if unit.state == "failed" or unit.restarts > 0:
                return {"ok": False, "reason": f"crashed ({unit.detail or 'exited'})", "log_tail": _last_start(unit)}
            if serving and since is not None and time.time() - since >= min_healthy:
                return {"ok": True}
            if time.time() >= deadline:
                what = "did not pass its health check" if unit.spec.health else "did not start"
                if serving:
                    what = f"was not healthy for {min_healthy:g}s in a row"
                return {"ok": False, "reason": f"{what} within the deadline (state {unit.state})",
                        "log_tail": _last_start(unit)}
            await unit.wait_change(0.1)

    async def stop(self, req: dict[str, Any]) -> dict[str, Any]:
        units = [self.units.by_name.pop(n) for n in req["ids"] if n in self.units.by_name]
        await asyncio.gather(*(u.stop() for u in units))
        for unit in units:
            self.units.persist(unit.spec.name)
        return {"stopped": [u.spec.name for u in units]}

    async def relabel(self, req: dict[str, Any]) -> dict[str, Any]:
        """Instances kept by a rollout (same process) take the newly applied config hash."""
        for unit in self.of(req["service"]):
            if unit.spec.instance_identity() == req["identity"]:
                unit.spec.config_hash = req.get("config_hash")
                unit.spec.release = req.get("release")
                self.units.persist(unit.spec.name)
        return {"ok": True}

    # ---------------------------------------------------------------- routes
    async def route(self, req: dict[str, Any]) -> dict[str, Any]:
        """Put instances in rotation behind the service's public port, and drain others out."""
        service = req["service"]
        if req.get("port"):
            await self.switch.ensure_frontend(service, int(req["port"]), req.get("bind") or "127.0.0.1")
        if service in self.switch.frontends:
            for name in req.get("add", []):
                unit = self.units.by_name.get(name)
                if unit is not None and unit.spec.port:
                    await self.switch.add(service, name, unit.spec.port)
        if req.get("drain"):
            await self.switch.drain(service, list(req["drain"]), float(req.get("drain_timeout", 30)))
        return {"ok": True}

    async def unroute(self, req: dict[str, Any]) -> dict[str, Any]:
        """The service left the spec or lost its port: close its public port."""
        await self.switch.remove_frontend(req["service"])
        return {"ok": True}

    def unit_changed(self, spec: ProcSpec) -> None:
        """An instance in rotation that changes state tells the switch at once (a crash: out of rotation)."""
        if spec.service:
            self.switch.unit_changed(spec.name)


def _last_start(unit: Unit) -> list[str]:
    """The unit's log since its last start, at most 15 lines."""
    lines = tail(Path(unit.spec.log), 200)
    header = f"--- symphony: starting {unit.spec.name} "
    starts = [i for i, line in enumerate(lines) if line.startswith(header)]
    return (lines[starts[-1]:] if starts else lines)[-15:]
