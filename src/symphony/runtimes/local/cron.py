"""Scheduled jobs: one task per scheduled job sleeps until its next cron time, then runs it again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from symphony.runtimes.local.procspec import ProcSpec
from symphony.runtimes.local.supervisor import Unit


class Schedule:
    """Runs each scheduled unit of `units` through `run` at its cron times (skipped while it runs).

    `run` starts the job again and schedules its next run (through `add`)."""

    def __init__(self, units: dict[str, Unit], run: Callable[[ProcSpec], Awaitable[object]]) -> None:
        self._units = units
        self._run = run
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def add(self, unit: Unit) -> None:
        """Keep the unit's schedule, if it has one and it is not kept already."""
        if not unit.spec.schedule or unit.spec.name in self._tasks:
            return
        self._tasks[unit.spec.name] = asyncio.create_task(self._loop(unit.spec.name))

    def cancel(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task:
            task.cancel()

    def cancel_all(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    async def _loop(self, name: str) -> None:
        from croniter import croniter

        while True:
            unit = self._units.get(name)
            if unit is None or not unit.spec.schedule:
                return
            itr = croniter(unit.spec.schedule, time.time())
            unit.next_run = itr.get_next(float)
            await asyncio.sleep(max(0.0, unit.next_run - time.time()))
            unit = self._units.get(name)
            if unit is None:
                return
            if unit.state != "running":
                print(f"agent: schedule runs {name}", flush=True)
                self._tasks.pop(name, None)  # this task ends here; `run` schedules the next one
                await self._run(unit.spec)
                return
