"""Resources running out: the database's disk filled up during a migration's backfill, and a public
port taken by another process while the stack is down. Each gives a clear error, harms nothing, and
the next `up` converges once the resource is back."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from _harness import Stack


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 400 MB tmpfs mounted by the test (as root), removed afterwards."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small filesystem needs root")
    mount = Path(tempfile.mkdtemp(prefix="symphony-small-disk-"))
    mount.chmod(0o755)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400m,mode=755", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
        shutil.rmtree(mount, ignore_errors=True)


def test_a_disk_that_fills_up_during_a_backfill_fails_the_deploy_clearly_and_up_converges_after(small_disk):
    stack = Stack(small_disk / "stack")
    try:
        stack.ok("up")
        with psycopg.connect(stack.url(), autocommit=True) as conn:
            conn.execute("INSERT INTO entries (account, amount) SELECT 'seed' || g, '1.00' "
                         "FROM generate_series(1, 300000) g")
            conn.execute("CHECKPOINT")
            before = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        free = shutil.disk_usage(small_disk).free
        filler = small_disk / "filler"
        with filler.open("wb") as fh:  # leave too little for the backfill's new column and its WAL
            fh.truncate(0)
            fh.write(b"\0" * max(0, free - 12 * 1024 * 1024))
        stack.add_migration("02_v2")
        stack.write(version=2, release="b")
        out = stack.run("deploy", timeout=600)
        assert out.returncode != 0, out.stdout + out.stderr
        assert "Traceback" not in out.stderr
        assert "space" in (out.stdout + out.stderr).lower(), out.stdout + out.stderr
        filler.unlink()
        found = stack.converged([])
        assert found.get("ok"), found
        with psycopg.connect(stack.url()) as conn:
            assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == before  # nothing lost
    finally:
        stack.destroy()


def test_a_port_taken_while_the_stack_is_down_is_a_clear_error_and_harms_nothing(tmp_path):
    stack = Stack(Path(tempfile.mkdtemp(prefix="symphony-port-")) / "stack")
    try:
        stack.ok("up")
        url = stack.url()
        stack.ok("down")
        with socket.socket() as blocker:
            blocker.bind(("127.0.0.1", stack.port))
            blocker.listen()
            out = stack.run("up")
            assert out.returncode == 2, out.stdout + out.stderr
            assert f"port {stack.port}" in out.stderr and "in use" in out.stderr and "Traceback" not in out.stderr
            assert (stack.home / "volumes" / "db" / "data" / "PG_VERSION").exists()  # the volume is untouched
        stack.ok("up")
        assert stack.url() == url
        found = stack.converged([])
        assert found.get("ok"), found
    finally:
        stack.destroy()
        shutil.rmtree(stack.folder.parent, ignore_errors=True)
