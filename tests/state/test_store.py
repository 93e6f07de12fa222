"""The SQLite state store and the stack lock."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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
