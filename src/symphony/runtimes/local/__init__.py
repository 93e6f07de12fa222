"""The local runtime: a background agent supervising real processes and a real PostgreSQL."""

from typing import Any

__all__ = ["LocalRuntime"]


def __getattr__(name: str) -> Any:  # imported lazily: `symphony plan` needs no agent-side modules
    if name == "LocalRuntime":
        from symphony.runtimes.local.runtime import LocalRuntime

        return LocalRuntime
    raise AttributeError(name)
