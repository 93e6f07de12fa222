"""The agent's long-running units (services, databases) addressed by name: run one as its spec
says, restart one, and wait until it is up."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from symphony.runtimes.local.procspec import ProcSpec, tail
from symphony.runtimes.local.supervisor import Unit
from symphony.runtimes.local.units import Units


class Services:
    def __init__(self, units: Units) -> None:
        self.units = units

    async def ensure(self, req: dict[str, Any]) -> dict[str, Any]:
        """Run this service spec; restart only if what makes the process differs. Waits until healthy."""
        spec = ProcSpec.from_json(req["spec"])
        deadline = time.time() + float(req.get("deadline", 60))
        unit = self.units.by_name.get(spec.name)
        if unit and unit.spec.identity() == spec.identity() and unit.state not in ("stopped", "failed"):
            unit.spec = spec  # same process: only the bookkeeping changed
            self.units.persist(spec.name)
        else:
            if unit:
                await unit.stop()
            unit = self.units.start(spec)
        return await _await_up(unit, deadline)

    async def restart(self, req: dict[str, Any]) -> dict[str, Any]:
        unit = self.units.by_name[req["name"]]
        await unit.stop()
        fresh = self.units.start(unit.spec)
        return await _await_up(fresh, time.time() + float(req.get("deadline", 60)))


async def _await_up(unit: Unit, deadline: float) -> dict[str, Any]:
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
