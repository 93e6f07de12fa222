"""Content addresses of sources: a hash of every file's path, mode and content (plus the build
command). Shared by every runtime: the local runtime names its releases by it, the Kubernetes runtime
rebuilds an image only when it changes, and the engine records it as the desired release."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

IGNORED = {".git", "__pycache__", ".venv", ".symphony", ".mypy_cache", ".pytest_cache", ".ruff_cache", "node_modules"}
ID_LENGTH = 12


def files(source: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(source):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED)
        for name in sorted(filenames):
            if not name.endswith((".pyc", ".pyo")):
                found.append(Path(dirpath) / name)
    return found


def release_id(source: Path, build: list[str] | None) -> str:
    digest = hashlib.sha256()
    digest.update(repr(build).encode())
    for path in files(source):
        rel = path.relative_to(source).as_posix()
        st = path.lstat()
        digest.update(f"\0{rel}\0{st.st_mode & 0o111:o}\0".encode())
        if stat.S_ISLNK(st.st_mode):
            digest.update(os.readlink(path).encode())
        else:
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:ID_LENGTH]
