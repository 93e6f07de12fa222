"""Backups of a PostgreSQL service: pg_dump -Fc per database into a folder (files 0600), a retention
count per service, and pg_restore back into the running server. Shared by every runtime (locally into
.symphony/backups/, on Kubernetes inside the migration Job into its backups claim); the caller says
where the PostgreSQL client binaries are."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from symphony.children import tied
from symphony.errors import RuntimeFailure, UsageError


def _env(url: str) -> tuple[dict[str, str], list[str]]:
    """libpq environment (the password never on a command line) and the connection arguments."""
    parts = urlsplit(url)
    env = {**{k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "HOME")},
           "PGPASSWORD": unquote(parts.password or ""), "PGCONNECT_TIMEOUT": "10"}
    args = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432), "-U", unquote(parts.username or "")]
    return env, args


def backup(folder: Path, service: str, url: str, databases: list[str], keep: int, bindir: Path) -> list[Path]:
    """Dump every database of the service; keep the newest `keep` backups. Returns the files written."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{int(time.time() * 1000) % 1000:03d}"
    env, args = _env(url)
    written = []
    for db in databases or ["postgres"]:
        target = folder / f"{service}-{stamp}-{db}.dump"
        tmp = target.with_name(target.name + ".partial")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.close(fd)
        proc = subprocess.run([str(bindir / "pg_dump"), *args, "-Fc", "-f", str(tmp), db],
                              env=env, capture_output=True, text=True, preexec_fn=tied())
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise RuntimeFailure(f"{service}: pg_dump of {db} failed: {proc.stderr.strip()[:400]}")
        os.replace(tmp, target)
        written.append(target)
    _prune(folder, service, keep)
    return written


def backups(folder: Path, service: str) -> list[str]:
    """Backup ids of a service (newest first): the timestamp part of the file names."""
    if not folder.exists():
        return []
    ids = {p.name[len(service) + 1:].split("-", 1)[0] for p in folder.glob(f"{service}-*.dump")}
    return sorted(ids, reverse=True)


def _prune(folder: Path, service: str, keep: int) -> None:
    for old in backups(folder, service)[keep:]:
        for path in folder.glob(f"{service}-{old}-*.dump"):
            path.unlink(missing_ok=True)


def restore(folder: Path, service: str, url: str, backup_id: str, bindir: Path) -> list[str]:
    """Restore every database dumped in backup `backup_id` (clean: objects are dropped and recreated).

    Each database in one transaction: a restore cut short (Ctrl-C reaches pg_restore too, a kill, a
    failed statement) leaves it as it was, never with its tables dropped and not yet made again."""
    files = sorted(folder.glob(f"{service}-{backup_id}-*.dump"))
    if not files:
        known = ", ".join(backups(folder, service)[:5]) or "none"
        raise UsageError(f"no backup {backup_id!r} of {service}", fix=f"backups: {known} (symphony backup lists them)")
    env, args = _env(url)
    done = []
    for path in files:
        db = path.stem.split("-", 2)[2]
        proc = subprocess.run(
            [str(bindir / "pg_restore"), *args, "--clean", "--if-exists", "--no-owner", "--single-transaction",
             "-d", db, str(path)],
            env=env, capture_output=True, text=True, preexec_fn=tied(),  # never goes on without its command
        )
        if proc.returncode != 0:
            raise RuntimeFailure(f"{service}: pg_restore of {db} failed: {proc.stderr.strip()[:400]}")
        done.append(db)
    return done
