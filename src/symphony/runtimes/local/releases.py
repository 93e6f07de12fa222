"""Releases: a service's `source` folder snapshotted into a content-addressed, read-only folder.

The release id is a hash of every file's path, mode and content (plus the build command), so an
unchanged folder gives the same release and a changed one a new release, which is built once and
never changes under a running process. An older release stays on disk and can run again.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from symphony.children import tied
from symphony.errors import RuntimeFailure
from symphony.sources import files, release_id

__all__ = ["interpreter", "prepare", "release_id", "release_path", "remove_tree"]



def release_path(releases: Path, rid: str) -> Path:
    return releases / rid


def prepare(releases: Path, source: Path, build: list[str] | None, log: Path) -> tuple[str, Path]:
    """Snapshot and build `source` unless that release exists; returns (release id, folder)."""
    rid = release_id(source, build)
    final = release_path(releases, rid)
    if final.exists():
        return rid, final
    releases.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{rid}-", dir=releases))
    try:
        for path in files(source):
            target = staging / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target, follow_symlinks=False)
        if build:
            _build(staging, build, log, rid)
        # Byte-compile Python so a read-only release starts fast.
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "-x", r"/\.venv/", str(staging)],
            capture_output=True,
            check=False,
        )
        _make_read_only(staging)
        os.chmod(staging, 0o555)
        try:
            staging.rename(final)
        except OSError:
            if not final.exists():
                raise
            remove_tree(staging)  # another apply step built the same release meanwhile
    except BaseException:
        remove_tree(staging)
        raise
    return rid, final


def _build(folder: Path, build: list[str], log: Path, rid: str) -> None:
    argv = [sys.executable if build[0] == "python" else build[0], *build[1:]]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        fh.write(f"--- symphony: building release {rid}: {' '.join(build)}\n".encode())
        fh.flush()
        try:
            proc = subprocess.run(argv, cwd=folder, stdout=fh, stderr=subprocess.STDOUT, timeout=1800,
                                  preexec_fn=tied())
        except OSError as exc:
            raise RuntimeFailure(f"build command {build[0]!r} cannot run: {exc.strerror or exc}") from exc
    if proc.returncode != 0:
        lines = log.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeFailure(
            f"build of release {rid} failed with exit code {proc.returncode}:\n" + "\n".join(lines),
            fix=f"fix the build command; full output in {log}",
        )


def _make_read_only(folder: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                mode = path.stat().st_mode
                path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        for name in dirnames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                path.chmod(0o555)


def remove_tree(folder: Path) -> None:
    """Delete a (possibly read-only) release folder."""
    if not folder.exists():
        return
    for dirpath, dirnames, _ in os.walk(folder):
        for name in dirnames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                p.chmod(0o755)
    folder.chmod(0o755)
    shutil.rmtree(folder, ignore_errors=True)


def interpreter(release: Path | None, first: str) -> str:
    """`python` as the first word means Symphony's interpreter, or the release's own .venv."""
    if first not in ("python", "python3"):
        return first
    if release is not None:
        venv = release / ".venv" / "bin" / "python"
        if venv.exists():
            return str(venv)
    return sys.executable
