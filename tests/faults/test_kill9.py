"""kill -9 at the worst moments, then one `symphony up`: it converges (exit 0, plan clean, the service
serving, the migration state consistent, no orphaned process) and every acknowledged write is there.
The small cases of bench/faults.py, which runs them at random moments, many times over."""

from __future__ import annotations

import os

import psycopg
from _harness import Writer, kill
from _harness import stack as stack  # noqa: F401 (the fixture, by its name)
from conftest import wait_until


def assert_converged(found: dict) -> None:
    assert found.get("ok"), found


def test_the_agent_the_postmaster_and_the_app_killed_at_once_then_up_converges(stack):
    """The issue's case: the postmaster's zombie held postmaster.pid and PostgreSQL refused to start."""
    stack.ok("up")
    for _ in range(3):
        writer = Writer(stack.port)
        wait_until(lambda w=writer: len(w.acked) >= 20, timeout=30)
        kill(stack.victims("agent", None) + stack.victims("postgres", None) + stack.victims("app", None))
        acked = writer.finish()
        assert_converged(stack.converged(acked))


def test_a_deploy_with_a_migration_killed_in_its_backfill_then_up_converges(stack):
    """Symphony itself (the CLI and its agent) dies half-way through the expand: the next up repairs the
    start (resumes or rolls it back), finishes the deploy, and nothing is left half-done."""
    stack.ok("up")
    with psycopg.connect(stack.url(), autocommit=True) as conn:
        conn.execute("INSERT INTO entries (account, amount) SELECT 'seed' || g, '1.00' FROM generate_series(1, 200000) g")
    writer = Writer(stack.port)
    stack.add_migration("02_v2")
    stack.write(version=2, release="b")
    deploy = stack.start("deploy")
    try:
        def backfilling() -> bool:
            with psycopg.connect(stack.url()) as conn:
                row = conn.execute("SELECT memo::text FROM symphony_migrate.migrations WHERE name='02_v2'").fetchone()
            return bool(row and ":backfill" in row[0])

        wait_until(backfilling, timeout=120, interval=0.05)
        kill(stack.victims("cli", deploy) + stack.victims("agent", None))
    finally:
        deploy.kill()
        deploy.wait(timeout=30)
    acked = writer.finish()
    found = stack.converged(acked)
    assert_converged(found)
    assert found["migrations"]["02_v2"] in ("active", "complete")


def test_after_everything_is_killed_the_jobs_wait_for_the_database_to_finish_its_recovery(stack):
    """Everything killed with WAL to replay, and changes waiting for the job and the app: the database the
    new agent restarts must be taking connections before the setup job runs (bench/faults.py once saw a
    setup job fail with 'connection refused' after a kill of everything mid-deploy; not reproduced here)."""
    stack.ok("up")
    with psycopg.connect(stack.url(), autocommit=True) as conn:  # WAL to replay: recovery takes a while
        conn.execute("INSERT INTO entries (account, amount) SELECT 'seed' || g, '1.00' FROM generate_series(1, 400000) g")
    kill(stack.victims("all", None))
    stack.write(version=1, release="b")  # the setup job and the app have changes to apply
    found = stack.converged([])
    assert_converged(found)


def test_a_restore_cut_short_leaves_the_database_as_it_was_and_the_next_restore_completes(stack):
    """A restore interrupted in its COPY used to leave the database half-restored (Ctrl-C reaches
    pg_restore too, being in the terminal's process group): its tables dropped by --clean, some not made
    again. It is one transaction now, all or nothing. And a pg_restore whose CLI was killed went on by
    itself after the stack's lock was gone, beside whatever command came next; now it dies with its CLI
    (here only the CLI is killed -9), and its transaction with it."""
    stack.ok("up")
    url = stack.url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO entries (account, amount) SELECT 'seed' || g, '1.00' FROM generate_series(1, 300000) g")
    backup_id = stack.ok("backup", "db").stdout.strip().splitlines()[-1].split()[1]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO entries (account, amount) VALUES ('after the backup', '2.00')")
        before = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
    restore = stack.start("restore", "db", backup_id, "--yes")
    try:
        def copying() -> bool:
            with psycopg.connect(url, autocommit=True) as conn:
                return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_restore' "
                                    "AND query LIKE 'COPY%%'").fetchone()[0] > 0

        wait_until(copying, timeout=60, interval=0.01)
        kill([restore.pid])
    finally:
        restore.kill()
        restore.wait(timeout=30)

    def settled() -> bool:  # the killed client's transaction is rolled back once its backend notices
        with psycopg.connect(url, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_restore'"
                                ).fetchone()[0] == 0
    wait_until(settled, timeout=60)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == before
    stack.ok("restore", "db", backup_id, "--yes")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == before - 1
    assert_converged(stack.converged([]))


def test_a_first_up_killed_before_its_migrations_then_up_waits_for_the_restarting_database_and_converges(stack):
    """Found by bench/faults.py: the first `up` killed (with PostgreSQL) before its migrations ran; the
    agent restarts the database; the next `up` planned while it was still starting could not read its
    migrations, planned none, and its setup job was refused. The plan now waits for such a database.
    Here the restarted postmaster is held stopped (SIGSTOP) until the plan has said it waits."""
    import signal

    first = stack.start("up")
    try:
        wait_until(lambda: "db" in stack.unit_pids(), timeout=60, interval=0.01)
        old = stack.unit_pids()["db"]
        kill([first.pid, old])
    finally:
        first.kill()
        first.wait(timeout=30)
    wait_until(lambda: stack.unit_pids().get("db") not in (None, old), timeout=60, interval=0.01)
    restarted = stack.unit_pids()["db"]
    os.kill(restarted, signal.SIGSTOP)
    try:
        up = stack.start("up")
        seen: list[str] = []

        def waiting() -> bool:
            line = up.stdout.readline()
            seen.append(line)
            return "waiting" in line or line == ""

        wait_until(waiting, timeout=120, interval=0)
    finally:
        os.kill(restarted, signal.SIGCONT)
    rest = up.communicate(timeout=300)[0]
    assert up.returncode == 0, "".join(seen) + rest
    assert "before planning" in "".join(seen)
    assert_converged(stack.converged([]))
