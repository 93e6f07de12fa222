"""Log rotation: a log over LOG_MAX_BYTES moves to NAME.log.1 (older ones shift up, LOG_KEEP in all),
checked every ROTATE_EVERY seconds. Processes keep writing to the same file: it is truncated in place."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_KEEP = 3
ROTATE_EVERY = 10.0


def rotate_logs(folder: Path) -> None:
    """Rotate each `*.log` in `folder` that has grown past LOG_MAX_BYTES."""
    for path in folder.glob("*.log"):
        try:
            if path.stat().st_size < LOG_MAX_BYTES:
                continue
            for i in range(LOG_KEEP - 1, 0, -1):
                older = path.with_name(f"{path.name}.{i}")
                if older.exists():
                    older.replace(path.with_name(f"{path.name}.{i + 1}"))
            data = path.read_bytes()
            path.with_name(f"{path.name}.1").write_bytes(data)
            os.truncate(path, 0)  # writers use O_APPEND, so they continue at the new end
        except OSError:
            continue


async def keep_rotating(folder: Path) -> None:
    """Rotate the logs in `folder` every ROTATE_EVERY seconds, until cancelled."""
    while True:
        await asyncio.sleep(ROTATE_EVERY)
        rotate_logs(folder)
