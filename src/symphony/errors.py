"""Every error Symphony raises on purpose, in one hierarchy. The CLI turns each into one short message
without a traceback: exit code 1 for an apply that failed (ApplyError: a step failed, or a release was
rolled back), exit code 2 for everything else (bad input, a plan that cannot be made, a lock held)."""

from __future__ import annotations

from pathlib import Path


class SymphonyError(Exception):
    """Base of all errors a user can act on: `message` says what is wrong, `fix` what to do."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} ({self.fix})" if self.fix else self.message


class SpecError(SymphonyError):
    """The stack spec (or another input file) is wrong. Names the file, the key and the line."""

    def __init__(
        self,
        message: str,
        *,
        file: Path | str | None = None,
        key: str | None = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message, fix=fix)
        self.file = Path(file) if file else None
        self.key = key
        self.line = line

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = str(self.file) + (f":{self.line}" if self.line else "") + ": "
        key = f"{self.key}: " if self.key else ""
        fix = f" ({self.fix})" if self.fix else ""
        return f"{where}{key}{self.message}{fix}"


class UsageError(SymphonyError):
    """A command-line argument is wrong."""


class StateError(SymphonyError):
    """The state store cannot be read or written."""


class StateLockedError(StateError):
    """Another Symphony command holds the stack's lock."""


class PlanError(SymphonyError):
    """The plan cannot be made (for example a port that is taken by something else)."""


class RuntimeFailure(SymphonyError):
    """The runtime could not do what was asked (a process failed, a binary is missing)."""


class RolledBack(RuntimeFailure):
    """A new release did not become healthy; it was undone and the previous one serves."""

    def __init__(self, service: str, reason: str, log_tail: list[str]) -> None:
        text = f"rolled back: {reason}"
        if log_tail:
            text += "\n  last log lines of the failing instance:\n" + "\n".join(f"    {line}" for line in log_tail)
        super().__init__(text, fix=f"see 'symphony logs {service}'; the previous release still serves")
        self.service = service
        self.reason = reason


class ApplyError(SymphonyError):
    """One or more steps of an apply failed; `failures` maps service name to the reason."""

    def __init__(self, message: str, failures: dict[str, str], *, fix: str | None = None) -> None:
        super().__init__(message, fix=fix)
        self.failures = failures
