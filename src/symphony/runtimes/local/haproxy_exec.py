"""Start HAProxy, taking the listening sockets over from the previous HAProxy if it still runs.

    python -m symphony.runtimes.local.haproxy_exec HAPROXY CONFIG [OLD_ADMIN_SOCKET]

With `-x OLD_ADMIN_SOCKET` a reload loses no connection (the listeners are handed over, nothing
is re-bound); but HAProxy refuses to start if that socket does not answer, which is the case
when the supervisor restarts a crashed HAProxy. So the choice is made here, at each start, and
then this process becomes HAProxy (exec: same pid, supervised as it is).
"""

from __future__ import annotations

import os
import socket
import sys


def _answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


def main(argv: list[str]) -> None:
    haproxy, config = argv[0], argv[1]
    args = [haproxy, "-db", "-f", config]
    if len(argv) > 2 and _answers(argv[2]):
        args += ["-x", argv[2]]
    os.execv(haproxy, args)


if __name__ == "__main__":
    main(sys.argv[1:])
