"""The SQLite state store and the stack lock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from conftest import wait_until

from symphony.errors import StateLockedError
from symphony.state import Resource, StackLock, StateStore


def test_resources_round_trip_and_survive_reopen(tmp_path):
    store = StateStore(tmp_path / "state.db")
    store.put_resources([Resource("db", "postgres", "h1", None, "applied", 1, {"version": 15}, {"port": "5432"})])
    store.close()
    again = StateStore(tmp_path / "state.db")
    res = again.resource("db")
    assert res is not None
    assert (res.kind, res.config_hash, res.config, res.outputs) == ("postgres", "h1", {"version": 15}, {"port": "5432"})
    assert oct((tmp_path / "state.db").stat().st_mode & 0o777) == "0o600"


def test_a_revision_left_applying_by_a_crash_is_marked_interrupted(tmp_path):
    store = StateStore(tmp_path / "state.db")
    first = store.begin_revision("apply", [{"service": "db", "action": "create"}])
    store.journal(first, "db", "create", "started")
    assert store.interrupted() is not None  # what a crashed apply leaves
    second = store.begin_revision("apply", [])
    store.finish_revision(second, "applied")
    revs = {r.id: r for r in store.revisions()}
    assert revs[first].status == "interrupted"
    assert revs[second].status == "applied"
    assert store.journal_entries(first) == [("db", "create", "started", None)]


def test_lock_refuses_a_second_holder_and_names_its_pid(tmp_path):
    code = (
        "import sys,time; from symphony.state import StackLock; from pathlib import Path;"
        "StackLock(Path(sys.argv[1]),'apply').acquire(); print('locked', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StateLockedError) as err:
            StackLock(tmp_path / "lock").acquire()
        assert f"pid {holder.pid}" in str(err.value)
    finally:
        holder.kill()
        holder.wait()
    # A dead holder releases the lock by dying.
    with StackLock(tmp_path / "lock") as lock:
        assert f"pid {os.getpid()}" in (tmp_path / "lock").read_text()
        assert lock is not None


def test_of_commands_that_start_at_the_same_moment_exactly_one_gets_the_lock_and_the_rest_name_it(tmp_path):
    """Eight processes released together by a barrier file, many times over: one holder each round, every
    other one refused at once with the holder's pid and command (never 'unknown', read mid-write)."""
    code = textwrap.dedent("""
        import os, sys, time
        from pathlib import Path
        from symphony.errors import StateLockedError
        from symphony.state import StackLock
        go = Path(sys.argv[2])
        Path(f"{go}.ready.{os.getpid()}").touch()
        while not go.exists():
            time.sleep(0.001)
        try:
            lock = StackLock(Path(sys.argv[1]), f"deploy-{os.getpid()}").acquire()
        except StateLockedError as exc:
            print("refused", exc, flush=True)
        else:
            print("held", os.getpid(), flush=True)
            time.sleep(0.3)
            lock.release()
    """)
    for round_ in range(5):
        go = tmp_path / f"go{round_}"
        procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "lock"), str(go)],
                                  stdout=subprocess.PIPE, text=True) for _ in range(8)]
        wait_until(lambda go=go: len(list(tmp_path.glob(f"{go.name}.ready.*"))) == 8, timeout=30)  # all at the barrier
        go.touch()
        outputs = [p.communicate(timeout=30)[0].strip() for p in procs]
        held = [o for o in outputs if o.startswith("held")]
        refused = [o for o in outputs if o.startswith("refused")]
        assert len(held) == 1 and len(refused) == 7, outputs
        holder = held[0].split()[1]
        for line in refused:
            assert f"(pid {holder}, symphony deploy-{holder})" in line, line
