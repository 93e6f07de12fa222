"""Releases: content-addressed, read-only snapshots of a source folder, built once."""

from __future__ import annotations

import pytest

from symphony.errors import RuntimeFailure
from symphony.runtimes.local import releases


def _source(tmp_path):
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "mod.py").write_text("X = 1\n")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "junk.pyc").write_bytes(b"junk")
    return src


def test_same_content_same_release_and_a_change_makes_a_new_one(tmp_path):
    src = _source(tmp_path)
    first = releases.release_id(src, None)
    assert releases.release_id(src, None) == first
    (src / "__pycache__" / "other.pyc").write_bytes(b"ignored")
    assert releases.release_id(src, None) == first
    (src / "pkg" / "mod.py").write_text("X = 2\n")
    assert releases.release_id(src, None) != first
    assert releases.release_id(src, ["make"]) != releases.release_id(src, None)


def test_prepare_snapshots_read_only_and_the_source_can_change_after(tmp_path):
    src = _source(tmp_path)
    rid, folder = releases.prepare(tmp_path / "releases", src, None, tmp_path / "build.log")
    assert (folder / "pkg" / "mod.py").read_text() == "X = 1\n"
    assert not (folder / "__pycache__" / "junk.pyc").exists()
    assert (folder / "pkg" / "mod.py").stat().st_mode & 0o222 == 0
    (src / "pkg" / "mod.py").write_text("X = 2\n")
    assert (folder / "pkg" / "mod.py").read_text() == "X = 1\n"
    rid2, folder2 = releases.prepare(tmp_path / "releases", src, None, tmp_path / "build.log")
    assert rid2 != rid and folder.exists() and folder2.exists()


def test_build_runs_once_inside_the_release(tmp_path):
    src = _source(tmp_path)
    build = ["python", "-c", "open('built.txt','w').write('ok')"]
    _, folder = releases.prepare(tmp_path / "releases", src, build, tmp_path / "build.log")
    assert (folder / "built.txt").read_text() == "ok"


def test_failed_build_stops_with_its_output_and_leaves_no_release(tmp_path):
    src = _source(tmp_path)
    build = ["python", "-c", "print('compiler says no'); raise SystemExit(4)"]
    with pytest.raises(RuntimeFailure) as err:
        releases.prepare(tmp_path / "releases", src, build, tmp_path / "build.log")
    assert "exit code 4" in str(err.value)
    assert "compiler says no" in str(err.value)
    assert [p for p in (tmp_path / "releases").iterdir()] == []


def test_python_means_the_release_venv_when_it_has_one(tmp_path):
    import sys

    assert releases.interpreter(tmp_path, "python") == sys.executable
    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").write_text("")
    assert releases.interpreter(tmp_path, "python") == str(venv / "python")
    assert releases.interpreter(tmp_path, "node") == "node"
