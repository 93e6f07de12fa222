"""Child processes that die with the command that started them. A pg_restore, pg_dump, initdb or build
left running by a killed Symphony would go on changing the stack after its lock is released, beside the
next command (found by tests/faults: a restore went on to the end after its CLI was killed)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):  # no prctl: children are not tied, as before
    _prctl = None


def tied() -> Callable[[], None] | None:
    """A `preexec_fn` for subprocess: the kernel sends the child SIGKILL when the thread that started it
    ends, however it ends (kill -9 included). Resolved before the fork, so the child only makes the call;
    a parent already gone by then is noticed too. None where the kernel has no such setting."""
    if _prctl is None:
        return None
    parent = os.getpid()
    prctl = _prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the call above
            os._exit(1)

    return preexec
