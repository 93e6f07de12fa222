"""A real PostgreSQL on this machine: find the binaries, initdb into a volume, configure, connect.

PostgreSQL refuses to run as root. When Symphony runs as root, the database runs as an unprivileged
user (Debian's `postgres` user if it exists, else one Symphony creates) that owns the volume.
Authentication is scram-sha-256 with a generated password kept in a 0600 file.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import stat
import subprocess
from pathlib import Path
from typing import TypedDict

import psutil

from symphony.children import tied
from symphony.errors import RuntimeFailure

FALLBACK_USER = "symphony-pg"
CONF_NAME = "symphony.conf"


def find_bindir(version: int) -> Path:
    """The bin folder of PostgreSQL `version`'s server binaries, or a clear error naming the fix."""
    candidates = [Path(p) for p in glob.glob(f"/usr/lib/postgresql/{version}/bin")]
    candidates += [Path(p) for p in glob.glob(f"/usr/pgsql-{version}/bin")]
    on_path = shutil.which("postgres")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)
    for bindir in candidates:
        if (bindir / "postgres").exists() and (bindir / "initdb").exists() and _major(bindir) == version:
            return bindir
    others = sorted({major for p in glob.glob("/usr/lib/postgresql/*/bin") if (major := _major(Path(p))) is not None})
    hint = f" (found version {', '.join(map(str, others))}: set postgres.version to it)" if others else ""
    raise RuntimeFailure(
        f"PostgreSQL {version} server binaries not found{hint}",
        fix=f"run 'make system' or 'apt-get install -y postgresql-{version}'",
    )


def _major(bindir: Path) -> int | None:
    match = re.search(r"/postgresql/(\d+)/bin", str(bindir))
    if match:
        return int(match.group(1))
    try:
        out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    found = re.search(r"(\d+)", out.stdout)
    return int(found.group(1)) if found else None


def run_as_user() -> str | None:
    """The unprivileged user that runs PostgreSQL when Symphony is root (None when it is not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", FALLBACK_USER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", FALLBACK_USER],
        check=True,
        capture_output=True,
    )
    return FALLBACK_USER


def check_reachable(path: Path, user: str | None) -> None:
    """The database user must be able to reach its volume: every parent folder must be searchable."""
    if user is None:
        return
    pw = pwd.getpwnam(user)
    groups = set(os.getgrouplist(user, pw.pw_gid))
    for parent in reversed(path.parents):
        st = parent.stat()
        if st.st_uid == pw.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            raise RuntimeFailure(
                f"the database runs as user '{user}', who cannot reach {path}: {parent} is not searchable",
                fix=f"run 'chmod o+x {parent}' or keep the stack in a folder such as /srv or /opt",
            )


def data_dir(volume: Path) -> Path:
    return volume / "data"


def clear_stale_lock(data: Path) -> str | None:
    """Remove a `postmaster.pid` that no running postmaster holds; say so, or return None.

    A postmaster killed while nobody reaps it (its parent, the agent, killed too; a container whose PID 1
    never reaps) stays a zombie, which `kill(pid, 0)` still finds: PostgreSQL then refuses to start ("lock
    file already exists") for as long as the zombie lasts. As Patroni does, the file is not trusted for its
    pid alone: it is kept only while a live process works in this data directory (the postmaster, or a
    backend of a killed one, still attached to its shared memory: PostgreSQL's own check of that memory
    needs the file).
    """
    lock = data / "postmaster.pid"
    try:
        first = lock.read_text().splitlines()[:1]
    except FileNotFoundError:
        return None
    except OSError:
        return None  # unreadable: PostgreSQL's own check decides
    pid = int(first[0]) if first and first[0].strip().isdigit() else None
    if _works_in(data.resolve()):
        return None  # the postmaster (whatever pid the file says) or a backend of it: not stale
    with contextlib.suppress(FileNotFoundError):
        lock.unlink()
    what = f"pid {pid}" if pid is not None else "no pid"
    return f"removed a stale postmaster.pid ({what}: no postmaster runs in {data})"


def _works_in(data: Path) -> bool:
    """Whether a live process has `data` as its working directory (a postmaster and its backends do). A
    postgres process whose directory cannot be read counts too: better refused than two postmasters."""
    for proc in psutil.process_iter(["name", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if Path(proc.cwd()) == data:
                return True
        except psutil.AccessDenied:
            if proc.info["name"] in ("postgres", "postmaster"):
                return True
        except (psutil.NoSuchProcess, FileNotFoundError):
            continue
    return False


def is_initialized(volume: Path) -> bool:
    return (data_dir(volume) / "PG_VERSION").exists()


def volume_version(volume: Path) -> int | None:
    try:
        return int((data_dir(volume) / "PG_VERSION").read_text().strip())
    except (OSError, ValueError):
        return None


def read_password(path: Path, made: bool = False) -> str:
    """The generated password for a database service, created (mode 0600) on first use, whole or not at
    all (written aside, then linked into place). `made`: the cluster exists, so its password must too: a
    new one could never log in, so a missing or empty file is refused, naming it."""
    try:
        password = path.read_text().strip()
    except FileNotFoundError:
        password = None
    if password:
        return password
    if password is not None or made:
        state = "is empty" if password is not None else "is missing"
        raise RuntimeFailure(f"the password file {path} {state}, and the cluster's users were made with the "
                             "password it held", fix="restore the file from a copy (a backup of .symphony), then "
                             "run the command again")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    password = secrets.token_urlsafe(24)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # fails if another run made it first: then that one is the password
        except FileExistsError:
            return read_password(path, made)
    finally:
        tmp.unlink(missing_ok=True)
    return password


def initdb(volume: Path, bindir: Path, user: str | None, superuser: str, password: str) -> str:
    """Create a new cluster in `volume`/data; returns initdb's output."""
    volume.mkdir(parents=True, exist_ok=True)
    os.chmod(volume, 0o700)
    pw = pwd.getpwnam(user) if user else None
    if pw:
        os.chown(volume, pw.pw_uid, pw.pw_gid)
    pwfile = volume / ".initdb-password"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    if pw:
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    # initdb writes into a folder of its own, renamed to data/ once whole: a crash half-way leaves no data/
    # that looks like a cluster, only this folder, which the next initdb removes (it never held data).
    building = volume / "data.initdb"
    _stop_orphans(building)
    if building.exists():
        shutil.rmtree(building)
    argv = [
        str(bindir / "initdb"),
        "-D",
        str(building),
        "-U",
        superuser,
        f"--pwfile={pwfile}",
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--locale=C.UTF-8",
    ]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, preexec_fn=tied(),
                              **_as_user(user))
    finally:
        pwfile.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise RuntimeFailure(f"initdb failed in {volume}: {(proc.stderr or proc.stdout).strip()[-500:]}")
    conf = building / "postgresql.conf"
    with conf.open("a") as fh:
        fh.write(f"\n# Settings managed by Symphony\ninclude_if_exists = '{CONF_NAME}'\n")
    os.rename(building, data_dir(volume))
    return proc.stdout


def _stop_orphans(building: Path) -> None:
    """An initdb whose Symphony was killed goes on writing into its folder (a child is not killed with its
    parent): stop it, and what it started, before the folder is removed. It never held data."""
    mine = str(building)
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(mine in arg for arg in proc.info["cmdline"] or []) or Path(proc.cwd()) == building:
                found.append(proc)
    for proc in found:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(found, timeout=10)


def check_not_foreign(volume: Path) -> None:
    """Refuse to initdb over a data folder that holds something but is no cluster (no PG_VERSION): it may be
    a damaged cluster someone can still recover, so it is never overwritten."""
    data = data_dir(volume)
    if data.is_dir() and not is_initialized(volume) and any(data.iterdir()):
        raise RuntimeFailure(
            f"{data} holds files but is not a PostgreSQL cluster (no PG_VERSION): Symphony will not initdb over it",
            fix=f"if it is what a crash left, move it away (mv {data} {data}.broken) and apply again; "
                "else restore the volume from a backup")


def write_config(volume: Path, port: int, bind: str, settings: dict[str, str], user: str | None) -> bool:
    """Write Symphony's settings file; True if it changed."""
    lines = [
        "# Written by Symphony on every apply: edit the stack spec instead.",
        f"listen_addresses = '{bind}'",
        f"port = {port}",
        "unix_socket_directories = ''",
        "password_encryption = 'scram-sha-256'",
        "logging_collector = off",
    ]
    for key, value in sorted(settings.items()):
        if not re.fullmatch(r"[a-z_][a-z0-9_.]*", key):
            raise RuntimeFailure(f"invalid PostgreSQL setting name {key!r}")
        lines.append(f"{key} = '{value.replace(chr(39), chr(39) * 2)}'")
    text = "\n".join(lines) + "\n"
    path = data_dir(volume) / CONF_NAME
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_name(path.name + ".tmp")  # whole or not at all: the agent may restart the server any time
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    if user:
        pw = pwd.getpwnam(user)
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
    os.replace(tmp, path)
    return True


def dsn(host: str, port: int, user: str, password: str, database: str) -> str:
    from urllib.parse import quote

    return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{quote(database, safe='')}"


def ensure_databases(admin_dsn: str, names: list[str]) -> list[str]:
    """Create the databases that do not exist yet; returns the ones created."""
    import psycopg
    from psycopg import sql

    created = []
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
        for name in names:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                continue
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            created.append(name)
    return created


def reload(admin_dsn: str, changed: list[str]) -> list[str]:
    """Reload the configuration; returns which of the `changed` settings need a restart to apply."""
    import psycopg

    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT pg_reload_conf()")
        rows = conn.execute(
            "SELECT name FROM pg_settings WHERE name = ANY(%s) AND context = 'postmaster'", (changed,)
        ).fetchall()
    return [r[0] for r in rows]


class _UserArgs(TypedDict, total=False):
    """subprocess arguments that run a command as another user."""

    user: int
    group: int
    extra_groups: list[int]
    cwd: str


def _as_user(user: str | None) -> _UserArgs:
    if not user or os.geteuid() != 0:
        return {}
    pw = pwd.getpwnam(user)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [], "cwd": "/"}
