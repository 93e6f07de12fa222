"""`symphony migrate-job`: what a Kubernetes migration Job runs inside the cluster, run here as a real
process against a real PostgreSQL (the database URL from the environment, as a secretKeyRef gives it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

from symphony.migrations.engine import Engine
from symphony.migrations.model import load_migrations

MIGRATIONS = ROOT / "examples" / "campsite" / "v2" / "migrations"


def _job(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "symphony.cli.main", "migrate-job", *args],
                          env={**os.environ, "DATABASE_URL": dsn}, capture_output=True, text=True, timeout=120)


def _states(dsn: str) -> dict[str, str]:
    return {m["name"]: m["state"] for m in Engine(dsn).status(load_migrations(MIGRATIONS)).migrations}


def test_start_backs_up_first_then_expands_and_complete_contracts(dsn: str, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    start = _job(dsn, "start", "--dir", str(MIGRATIONS), "--backups", str(backups), "--keep", "2")
    assert start.returncode == 0, start.stderr
    assert _states(dsn) == {"00_base": "complete", "01_hourly_fahrenheit": "active"}
    assert start.stdout.strip()  # progress is printed for the Job's log
    assert dsn not in start.stdout + start.stderr  # the URL (with its password) is never printed
    assert len(list(backups.glob("*.dump"))) == 1
    complete = _job(dsn, "complete", "--dir", str(MIGRATIONS))
    assert complete.returncode == 0, complete.stderr
    assert _states(dsn)["01_hourly_fahrenheit"] == "complete"


def test_rollback_undoes_the_expand(dsn: str) -> None:
    assert _job(dsn, "start", "--dir", str(MIGRATIONS)).returncode == 0
    rollback = _job(dsn, "rollback", "--dir", str(MIGRATIONS))
    assert rollback.returncode == 0, rollback.stderr
    assert _states(dsn)["01_hourly_fahrenheit"] in ("rolled_back", "pending")


def test_without_the_url_it_says_what_to_set(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "symphony.cli.main", "migrate-job", "start", "--dir", str(MIGRATIONS)],
                          env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"}, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "DATABASE_URL" in proc.stderr and "Traceback" not in proc.stderr
