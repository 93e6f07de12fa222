"""The local PostgreSQL: initdb into a volume as an unprivileged user, password auth, reload vs restart."""

from __future__ import annotations

import os
import pwd
from types import SimpleNamespace

import psycopg
import pytest

from symphony.errors import RuntimeFailure
from symphony.runtimes.base import Deployment
from symphony.runtimes.local import postgres as pg
from symphony.runtimes.local.runtime import LocalRuntime

EVENTS: list[str] = []


def _events(service: str, message: str) -> None:
    EVENTS.append(f"{service}: {message}")


def _spec(**kw):
    base = dict(version=15, databases=["app"], port=None, user="symphony", settings={}, bind="127.0.0.1")
    base.update(kw)
    return SimpleNamespace(**base)


@pytest.fixture
def runtime(workdir):
    rt = LocalRuntime(workdir)
    yield rt
    rt.stop_all(_events)


def test_initdb_runs_unprivileged_with_password_auth(runtime):
    out = runtime.ensure_postgres(Deployment("db", "postgres", "h", postgres=_spec()), _events)
    volume = runtime.layout.volume("db")
    if os.geteuid() == 0:
        assert pwd.getpwuid(volume.stat().st_uid).pw_name == pg.run_as_user()
    secret = runtime.layout.secret("db.password")
    assert oct(secret.stat().st_mode & 0o777) == "0o600"
    assert out["password"] == secret.read_text().strip()
    with psycopg.connect(out["url"]) as conn:
        assert conn.execute("SELECT current_database(), current_setting('listen_addresses')").fetchone() == (
            "app",
            "127.0.0.1",
        )
        assert conn.execute("SELECT current_setting('password_encryption')").fetchone()[0] == "scram-sha-256"
    bad = out["url"].replace(out["password"], "wrong")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(bad, connect_timeout=5)


def test_data_survives_stop_and_start(runtime):
    out = runtime.ensure_postgres(Deployment("db", "postgres", "h", postgres=_spec()), _events)
    with psycopg.connect(out["url"], autocommit=True) as conn:
        conn.execute("CREATE TABLE t (v text)")
        conn.execute("INSERT INTO t VALUES ('kept')")
    runtime.stop_all(_events)
    again = runtime.ensure_postgres(Deployment("db", "postgres", "h", postgres=_spec()), _events)
    assert again["port"] == out["port"]  # the port is remembered with the volume
    with psycopg.connect(again["url"]) as conn:
        assert conn.execute("SELECT v FROM t").fetchall() == [("kept",)]


def test_reload_only_setting_is_a_reload_and_restart_setting_restarts(runtime):
    runtime.ensure_postgres(Deployment("db", "postgres", "h", postgres=_spec()), _events)
    pid = runtime.observe()["db"].pids[0]
    EVENTS.clear()
    out = runtime.ensure_postgres(Deployment("db", "postgres", "h2", postgres=_spec(settings={"work_mem": "8MB"})), _events)
    assert runtime.observe()["db"].pids == [pid]
    assert any("reloaded" in e for e in EVENTS)
    with psycopg.connect(out["url"]) as conn:
        assert conn.execute("SHOW work_mem").fetchone()[0] == "8MB"
    EVENTS.clear()
    out = runtime.ensure_postgres(
        Deployment("db", "postgres", "h3", postgres=_spec(settings={"work_mem": "8MB", "max_connections": "50"})), _events
    )
    assert runtime.observe()["db"].pids != [pid]
    assert any("restarting" in e for e in EVENTS)
    with psycopg.connect(out["url"]) as conn:
        assert conn.execute("SHOW max_connections").fetchone()[0] == "50"


def test_missing_version_names_the_fix():
    with pytest.raises(RuntimeFailure) as err:
        pg.find_bindir(99)
    assert "PostgreSQL 99 server binaries not found" in str(err.value)
    assert "apt-get install" in str(err.value)


def test_unreachable_volume_folder_is_a_clear_error(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root runs the database as another user")
    user = pg.run_as_user()
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    os.chmod(tmp_path, 0o700)
    with pytest.raises(RuntimeFailure) as err:
        pg.check_reachable(locked / "volumes", user)
    assert "chmod o+x" in str(err.value)


@pytest.fixture
def zombie():
    """A process of the database's user, killed and not reaped: a zombie, which PostgreSQL's kill(pid, 0)
    still finds (as a postmaster killed with its agent stays until some init reaps it)."""
    import signal
    import subprocess

    import psutil
    from conftest import wait_until

    user = pg.run_as_user() if os.geteuid() == 0 else None
    proc = subprocess.Popen(["sleep", "600"], user=user)
    os.kill(proc.pid, signal.SIGKILL)
    wait_until(lambda: psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE, timeout=10)
    yield proc.pid
    proc.wait()


def _stale_lock(data, pid: int, lines: list[str]) -> None:
    """postmaster.pid as a killed postmaster leaves it, owned as PostgreSQL writes it."""
    lock = data / "postmaster.pid"
    lock.write_text("\n".join([str(pid), *lines[1:]]) + "\n")
    os.chown(lock, data.stat().st_uid, data.stat().st_gid)
    lock.chmod(0o600)


def test_a_postmaster_pid_naming_an_unreaped_zombie_does_not_stop_postgres_starting(runtime, zombie):
    out = runtime.ensure_postgres(Deployment("db", "postgres", "h", postgres=_spec()), _events)
    with psycopg.connect(out["url"], autocommit=True) as conn:
        conn.execute("CREATE TABLE t (v text)")
        conn.execute("INSERT INTO t VALUES ('kept')")
    data = pg.data_dir(runtime.layout.volume("db"))
    lines = (data / "postmaster.pid").read_text().splitlines()
    runtime.stop_all(_events)
    _stale_lock(data, zombie, lines)
    again = runtime.ensure_postgres(Deployment("db", "postgres", "h", postgres=_spec()), _events)
    with psycopg.connect(again["url"]) as conn:
        assert conn.execute("SELECT v FROM t").fetchall() == [("kept",)]
    assert f"removed a stale postmaster.pid (pid {zombie}" in runtime.layout.log("db").read_text()


def test_a_postmaster_pid_is_kept_while_a_process_still_works_in_the_data_directory(tmp_path, zombie):
    """A backend of a killed postmaster may still be attached to its shared memory: PostgreSQL's own check
    of it needs the file, so it stays (and PostgreSQL refuses, rightly) until that process is gone."""
    import subprocess

    data = tmp_path / "data"
    data.mkdir()
    (data / "postmaster.pid").write_text(f"{zombie}\n{data}\n")
    straggler = subprocess.Popen(["sleep", "600"], cwd=data)
    try:
        assert pg.clear_stale_lock(data) is None
        assert (data / "postmaster.pid").exists()
    finally:
        straggler.kill()
        straggler.wait()
    assert pg.clear_stale_lock(data) == f"removed a stale postmaster.pid (pid {zombie}: no postmaster runs in {data})"
    assert not (data / "postmaster.pid").exists()
    assert pg.clear_stale_lock(data) is None  # nothing to do


def test_every_committed_row_survives_a_kill_9_of_the_postmaster_under_write_load(runtime):
    """Durability: nothing Symphony sets weakens fsync, synchronous_commit or full_page_writes, and a
    postmaster killed mid-write is restarted by the agent with every acknowledged row in place."""
    import signal
    import threading

    from conftest import wait_until

    out = runtime.ensure_postgres(Deployment("db", "postgres", "h", postgres=_spec()), _events)
    with psycopg.connect(out["url"], autocommit=True) as conn:
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            assert conn.execute(f"SHOW {setting}").fetchone()[0] == "on", setting
        conn.execute("CREATE TABLE acked (id int PRIMARY KEY, payload text)")
    acked: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        with psycopg.connect(out["url"], autocommit=True) as conn:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    conn.execute("INSERT INTO acked VALUES (%s, repeat('x', 200))", (i,))
                except psycopg.Error:
                    return  # the server is gone: what was acknowledged is in `acked`
                acked.append(i)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        wait_until(lambda: len(acked) >= 500, timeout=60)
        old = runtime.observe()["db"].pids[0]
        os.kill(old, signal.SIGKILL)
        thread.join(timeout=30)
    finally:
        stop.set()
        thread.join(timeout=30)

    def back() -> bool:
        try:
            with psycopg.connect(out["url"], connect_timeout=2) as conn:
                return conn.execute("SELECT true").fetchone()[0]
        except psycopg.OperationalError:
            return False

    wait_until(back, timeout=90, interval=0.2)  # the agent restarts it; PostgreSQL replays its WAL
    assert runtime.observe()["db"].pids[0] != old
    with psycopg.connect(out["url"]) as conn:
        present = {r[0] for r in conn.execute("SELECT id FROM acked")}
    lost = sorted(set(acked) - present)
    assert lost == [], f"{len(lost)} acknowledged rows lost, e.g. {lost[:5]}"


def test_an_initdb_or_a_destroy_cut_short_leaves_nothing_the_next_apply_trips_on(runtime):
    """Found by bench/faults.py: a destroy killed half-way left data/ half-deleted, and the next up failed
    in initdb ("exists but is not empty"). A volume is now renamed aside before it is deleted, and initdb
    builds in a folder of its own, renamed to data/ once whole."""
    volumes = runtime.layout.volumes
    volumes.mkdir(parents=True, exist_ok=True)
    aside = volumes / ".deleting-db-1"  # what a destroy killed after its rename leaves
    (aside / "data" / "base").mkdir(parents=True)
    building = runtime.layout.volume("db") / "data.initdb"  # what an initdb killed half-way leaves
    (building / "global").mkdir(parents=True)
    out = runtime.ensure_postgres(Deployment("db", "postgres", "h", postgres=_spec()), _events)
    with psycopg.connect(out["url"]) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert not aside.exists() and not building.exists()


def test_a_data_folder_that_is_not_a_cluster_is_never_initdb_ed_over(runtime):
    data = pg.data_dir(runtime.layout.volume("db"))
    data.mkdir(parents=True)
    (data / "base").mkdir()
    (data / "precious").write_text("a damaged cluster someone may still recover")
    with pytest.raises(RuntimeFailure, match="holds files but is not a PostgreSQL cluster") as err:
        runtime.ensure_postgres(Deployment("db", "postgres", "h", postgres=_spec()), _events)
    assert "mv " in str(err.value)
    assert (data / "precious").read_text() == "a damaged cluster someone may still recover"


def test_an_initdb_left_running_by_a_killed_symphony_is_stopped_before_its_folder_is_reused(runtime):
    """Found by bench/faults.py: `up` killed during initdb; initdb (a child, not killed with it) went on
    writing while the next `up` removed its folder: 'Directory not empty', 'No such file or directory'."""
    import subprocess

    import psutil

    volume = runtime.layout.volume("db")
    volume.mkdir(parents=True)
    user = pg.run_as_user() if os.geteuid() == 0 else None
    if user:
        os.chown(volume, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
    orphan = subprocess.Popen([str(pg.find_bindir(15) / "initdb"), "-D", str(volume / "data.initdb"), "-U", "x",
                               "--auth=trust"], user=user, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        out = runtime.ensure_postgres(Deployment("db", "postgres", "h", postgres=_spec()), _events)
        with psycopg.connect(out["url"]) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert orphan.poll() is not None or not psutil.pid_exists(orphan.pid)
    finally:
        if orphan.poll() is None:
            orphan.kill()
        orphan.wait(timeout=10)


def test_a_lost_or_emptied_password_file_is_refused_before_anything_starts_and_restoring_it_works(runtime):
    """The cluster's users were made with the generated password: a new one (file gone) or an empty one
    (file emptied, or a crash between its creation and its write) can never log in, and the database
    would then be left 'starting' for ever behind a health check that cannot pass. Refused instead,
    naming the file; once it is back, the same data serves."""
    deployment = Deployment("db", "postgres", "h", postgres=_spec())
    out = runtime.ensure_postgres(deployment, _events)
    with psycopg.connect(out["url"], autocommit=True) as conn:
        conn.execute("CREATE TABLE t AS SELECT 'kept' AS v")
    runtime.stop_all(_events)
    secret = runtime.layout.secret("db.password")
    kept = secret.read_text()
    for broken in ("", None):
        if broken is None:
            secret.unlink()
        else:
            secret.write_text(broken)
        with pytest.raises(RuntimeFailure, match="db.password") as info:
            runtime.ensure_postgres(deployment, _events)
        assert "restore" in str(info.value.fix)
        assert "db" not in runtime.observe() or not runtime.observe()["db"].is_up  # nothing was started
    secret.write_text(kept)
    out = runtime.ensure_postgres(deployment, _events)
    with psycopg.connect(out["url"]) as conn:
        assert conn.execute("SELECT v FROM t").fetchone() == ("kept",)


def test_the_generated_password_file_is_written_whole_or_not_at_all(tmp_path):
    path = tmp_path / "secrets" / "db.password"
    first = pg.read_password(path)
    assert len(first) >= 24 and path.read_text() == first + "\n"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert pg.read_password(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["db.password"]  # no temporary file left
