"""The agent's units by name, each persisted in its own file, and adopted again after a restart.

Each unit has a file `units/NAME.json` (mode 0600: it holds secrets): what to run, the pid it
started and a job's last result, written the moment any of them changes, so a new agent after a
crash adopts what still runs and restarts what does not. One small file per unit keeps each write
cheap however many units there are.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from symphony.runtimes.local.layout import write_private_json
from symphony.runtimes.local.procspec import ProcSpec
from symphony.runtimes.local.supervisor import Unit


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data


class Units:
    """The units the agent supervises (`by_name`) and the last run of each job, kept on disk."""

    def __init__(self, folder: Path, on_change: Callable[[ProcSpec], None]) -> None:
        self.folder = folder
        self.by_name: dict[str, Unit] = {}
        self.last_run: dict[str, dict[str, Any]] = {}  # of each job, persisted with its unit
        self._on_change = on_change  # told after each change is on disk

    def new(self, spec: ProcSpec) -> Unit:
        """A unit for `spec`, persisted on every change, not yet in the table nor started."""

        # Persist at once on every change: a pid must be on disk before anyone can kill this agent
        # and expect adoption.
        def changed() -> None:
            self.persist(spec.name)
            self._on_change(spec)

        return Unit(spec, changed)

    def put(self, spec: ProcSpec) -> Unit:
        """A new unit for `spec` in the table under its name (replacing any), not started."""
        unit = self.new(spec)
        self.by_name[spec.name] = unit
        return unit

    def start(self, spec: ProcSpec) -> Unit:
        """A new unit for `spec` in the table, started and persisted."""
        unit = self.put(spec)
        unit.start()
        self.persist(spec.name)
        return unit

    def persist(self, name: str) -> None:
        """Write the unit's file, or remove it if the unit is gone."""
        unit = self.by_name.get(name)
        path = self.folder / f"{name}.json"
        if unit is None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            return
        running = unit.pid and unit.state not in ("stopped", "succeeded")
        proc = {"pid": unit.pid, "create_time": unit.create_time} if running else None
        write_private_json(path, {"spec": unit.spec.to_json(), "proc": proc, "job": self.last_run.get(name)})

    def persist_all(self) -> None:
        """Write every unit's file and remove the files of units no longer here."""
        for name in self.by_name:
            self.persist(name)
        known = set(self.by_name)
        for path in self.folder.glob("*.json"):
            if path.stem not in known:
                path.unlink(missing_ok=True)

    def restore(self, resume_job: Callable[[Unit, bool], None]) -> None:
        """Adopt the processes a previous agent left running; start the rest.

        A job is handed to `resume_job` with whether its process was adopted (its schedule and its
        result are the job runner's)."""
        for path in sorted(self.folder.glob("*.json")):
            saved = _read_json(path)
            if "spec" not in saved:
                continue
            spec = ProcSpec.from_json(saved["spec"])
            name = spec.name
            if saved.get("job"):
                self.last_run[name] = saved["job"]
            unit = self.put(spec)
            rec = saved.get("proc")
            adopted = unit.adopt(rec["pid"], rec.get("create_time")) if rec else False
            if spec.kind == "job":
                resume_job(unit, adopted)
            else:
                unit.start(adopted=adopted)
            print(f"agent: {'adopted' if adopted else 'restored'} {name}", flush=True)
        self.persist_all()
