"""The agent's jobs: run one now and report how it ended, or keep its schedule; record each run's
result with its unit (so `status` and a restarted agent know it)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from symphony.runtimes.local.cron import Schedule
from symphony.runtimes.local.procspec import ProcSpec, tail
from symphony.runtimes.local.supervisor import Unit
from symphony.runtimes.local.units import Units


class Jobs:
    def __init__(self, units: Units) -> None:
        self.units = units
        self.schedule = Schedule(units.by_name, self._start)

    async def run(self, req: dict[str, Any]) -> dict[str, Any]:
        """Run a job now and wait for it to end."""
        spec = ProcSpec.from_json(req["spec"])
        unit = await self._start(spec)
        await unit.finished()
        ok = unit.state == "succeeded"
        res: dict[str, Any] = {"ok": ok, "state": unit.state, "exit_code": unit.last_exit}
        if not ok:
            res["detail"] = unit.detail or (
                f"exited with code {unit.last_exit}" if unit.last_exit is not None else f"ended {unit.state}"
            )
            res["log_tail"] = tail(Path(spec.log), 15)
        return res

    async def register(self, req: dict[str, Any]) -> dict[str, Any]:
        """Keep a job's schedule without running it now."""
        spec = ProcSpec.from_json(req["spec"])
        unit = self.units.by_name.get(spec.name)
        if unit is None or unit.state != "running":
            unit = self.units.new(spec)
            last = self.units.last_run.get(spec.name, {})
            unit.state = last.get("state", "succeeded")
            unit.last_exit = last.get("exit")
            self.units.by_name[spec.name] = unit
        self.schedule.add(unit)
        self.units.persist(spec.name)
        return {"ok": True, "next_run": unit.next_run}

    def resume(self, unit: Unit, adopted: bool) -> None:
        """A job found by a new agent: follow its process if it still runs, else show its last result."""
        if adopted:
            unit.start(adopted=True)
            asyncio.create_task(self._record(unit))
        else:
            last = self.units.last_run.get(unit.spec.name, {})
            unit.state = last.get("state", "stopped")
            unit.last_exit = last.get("exit")
        self.schedule.add(unit)

    async def _start(self, spec: ProcSpec) -> Unit:
        old = self.units.by_name.get(spec.name)
        if old:
            if old.state == "running":
                await old.stop()
            self.schedule.cancel(spec.name)
        unit = self.units.start(spec)
        asyncio.create_task(self._record(unit))
        self.schedule.add(unit)
        return unit

    async def _record(self, unit: Unit) -> None:
        await unit.finished()
        self.units.last_run[unit.spec.name] = {
            "state": unit.state,
            "exit": unit.last_exit,
            "finished_at": time.time(),
            "config_hash": unit.spec.config_hash,
        }
        if self.units.by_name.get(unit.spec.name) is unit:
            self.units.persist(unit.spec.name)
