"""Bad input: one short message naming the file, the key and the fix; exit code 2; nothing touched."""

from __future__ import annotations

import socket

from conftest import basic_spec, free_port


def _assert_clean_error(proc, *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_unknown_key_names_file_line_and_suggestion(make_stack):
    sym = make_stack(basic_spec(free_port()).replace("health: /healthz", "helth: /healthz"))
    proc = sym.run("plan")
    _assert_clean_error(proc, "symphony.yaml:", "services.web", "helth", "health")
    assert not sym.home.exists() or not (sym.home / "volumes").exists()


def test_wrong_type_is_reported(make_stack):
    sym = make_stack(basic_spec(free_port()).replace("version: 15", "version: fifteen"))
    _assert_clean_error(sym.run("up"), "symphony.yaml:", "services.db.postgres.version")


def test_reference_to_missing_service_is_reported(make_stack):
    sym = make_stack(basic_spec(free_port()).replace("${db.url}", "${dbx.url}", 1))
    _assert_clean_error(sym.run("up"), "symphony.yaml:", "dbx")


def test_reference_to_unknown_output_is_reported(make_stack):
    sym = make_stack(basic_spec(free_port()).replace("${db.url}", "${db.uri}", 1))
    _assert_clean_error(sym.run("up"), "symphony.yaml:", "uri", "url")


def test_dependency_cycle_is_reported(make_stack):
    sym = make_stack(basic_spec(free_port()).replace("health: /healthz", "health: /healthz\n    depends_on: [seed]"))
    _assert_clean_error(sym.run("plan"), "cycle")


def test_port_in_use_is_reported_and_nothing_starts(make_stack):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        sym = make_stack(basic_spec(port))
        proc = sym.run("up")
        _assert_clean_error(proc, "services.web.port", f"port {port}", "in use")
    assert not (sym.home / "volumes" / "db").exists()
    assert sym.agent_pid() is None


def test_missing_postgres_binaries_are_reported(make_stack):
    sym = make_stack(basic_spec(free_port()).replace("version: 15", "version: 99"))
    proc = sym.run("up")
    _assert_clean_error(proc, "PostgreSQL 99 server binaries not found", "apt-get install")
    assert not (sym.home / "volumes" / "db").exists()


def test_unknown_target_is_reported(make_stack):
    sym = make_stack(basic_spec(free_port()))
    _assert_clean_error(sym.run("plan", "--target", "nope"), "--target nope", "web")


def test_missing_spec_file_is_reported(workdir):
    from conftest import Symphony

    sym = Symphony(workdir)
    _assert_clean_error(sym.run("plan"), "symphony.yaml")


def test_an_argument_too_long_for_the_system_is_a_clear_error(make_stack):
    """Found by bench/fuzz.py: a first argument longer than a file name may be was an OSError traceback in
    the commands that take [STACK] SERVICE (backup, restore, migrate)."""
    sym = make_stack(basic_spec(free_port()))
    for command in ("backup", "restore", "migrate"):
        proc = sym.run(command, "x" * 100_000, "db", "x")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, (command, proc.stderr[-500:])
