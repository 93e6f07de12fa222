"""symphony.children: a child started with tied() dies with the process that started it, kill -9 included;
one started without it lives on (the control)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import psutil
import pytest
from conftest import wait_until

from symphony.children import tied

PARENT = """
import subprocess, sys, time
from symphony.children import tied
child = subprocess.Popen(["sleep", "60"], preexec_fn=tied() if sys.argv[1] == "tied" else None)
print(child.pid, flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(tied() is None, reason="no prctl(PR_SET_PDEATHSIG) here")
@pytest.mark.parametrize("mode, dies", [("tied", True), ("free", False)])
def test_a_tied_child_dies_with_its_killed_parent(mode, dies):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    try:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)

        def gone() -> bool:
            try:
                return psutil.Process(child).status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True

        if dies:
            wait_until(gone, timeout=10)
        else:
            assert not gone()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)
