"""Symphony: bring up a whole data platform with one command; deliver every change with zero downtime.

The public library API. The `symphony` command is a thin layer over it.
"""

from typing import Any

from symphony.errors import (
    ApplyError,
    PlanError,
    RuntimeFailure,
    SpecError,
    StateError,
    StateLockedError,
    SymphonyError,
    UsageError,
)

__all__ = [
    "ApplyError",
    "PlanError",
    "RuntimeFailure",
    "SpecError",
    "StateError",
    "StateLockedError",
    "SymphonyError",
    "UsageError",
    "Workspace",
    "load_stack",
]


def __getattr__(name: str) -> Any:  # lazy: keep `import symphony` cheap for the CLI
    if name == "Workspace":
        from symphony.workspace import Workspace

        return Workspace
    if name == "load_stack":
        from symphony.spec import load_stack

        return load_stack
    raise AttributeError(name)
