"""The local runtime: a background agent supervising real processes and a real PostgreSQL."""

from symphony.runtimes.local.runtime import LocalRuntime

__all__ = ["LocalRuntime"]
