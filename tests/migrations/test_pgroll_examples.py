"""Conformance: every example migration of pgroll (its examples/ folder, 56 files at v0.14.0), applied
in order by `symphony up` on a stack holding only a PostgreSQL service, reaches `complete`.

The examples are not part of this repository: they are read from pgroll's Go module, fetched with
`go mod download` from the Go module proxy into the Go module cache (once per machine).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Symphony, kill_leftovers

PGROLL = "github.com/xataio/pgroll@v0.14.0"


def _examples() -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.fail("the Go toolchain is needed to fetch pgroll's examples (go mod download); install Go")
    proc = subprocess.run([go, "mod", "download", "-json", PGROLL], capture_output=True, text=True, timeout=300)
    info = json.loads(proc.stdout or "{}")
    if proc.returncode != 0 or "Dir" not in info:
        pytest.fail(f"go mod download {PGROLL} failed: {info.get('Error') or proc.stderr.strip()}")
    return Path(info["Dir"]) / "examples"


def test_every_pgroll_example_reaches_complete(workdir):
    examples = sorted(_examples().glob("*.yaml"))
    assert len(examples) == 56
    folder = workdir / "pgroll"
    (folder / "migrations").mkdir(parents=True)
    for path in examples:
        (folder / "migrations" / path.name).write_text(path.read_text())
    (folder / "symphony.yaml").write_text(
        "name: pgroll\nservices:\n  db:\n    postgres:\n      databases: [app]\n      migrations: ./migrations\n"
    )
    sym = Symphony(folder)
    try:
        out = sym.run("up", timeout=170)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr
        states = json.loads(sym.run("migrate", "status", "--json", check=True).stdout)["migrations"]
        assert [m["name"] for m in states] == [p.stem for p in examples]
        assert {m["state"] for m in states} == {"complete"}, [m for m in states if m["state"] != "complete"]
        assert "No changes" in sym.run("plan", check=True).stdout
    finally:
        sym.run("down", timeout=120)
        kill_leftovers(folder)
