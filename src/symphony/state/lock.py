"""The stack lock: one writer at a time. An flock, so a crashed holder releases it by dying."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from symphony.errors import StateLockedError


class StackLock:
    """Exclusive, non-blocking lock on `DIR/.symphony/lock`; the file holds the holder's pid and command."""

    def __init__(self, path: Path, command: str = "apply") -> None:
        self.path = path
        self.command = command
        self._fd: int | None = None

    def acquire(self) -> StackLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            deadline = time.monotonic() + 0.5  # the holder writes its name just after it takes the lock
            while not holder and time.monotonic() < deadline:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                if not holder:
                    time.sleep(0.01)
            os.close(fd)
            holder = holder or "unknown"
            raise StateLockedError(
                f"the stack is locked by another symphony command ({holder})",
                fix="wait for it to finish; the lock is released when that process exits",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, symphony {self.command}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StackLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
