"""Property-based fuzzing of every input Symphony reads: stack specs, pgroll migration files and command
lines, each mutated from a valid document (tests/fuzz/_mutate.py). Each input must give either success or
one short error (SpecError for files; exit code 2 and one line on stderr for the CLI), never a traceback.
A few hundred inputs here; bench/fuzz.py runs ten thousand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from _mutate import MUTATIONS, ODD_STRINGS, apply
from click.testing import CliRunner
from conftest import basic_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symphony.errors import SpecError
from symphony.migrations.catalog import Schema
from symphony.migrations.model import load_migration, parse_migration
from symphony.migrations.ops import operations
from symphony.spec.loader import parse_stack

ROOT = Path(__file__).resolve().parents[2]
CAMPSITE = ROOT / "examples" / "campsite"
SPECS = [yaml.safe_load((CAMPSITE / "symphony.yaml").read_text()),
         yaml.safe_load((CAMPSITE / "v2" / "symphony.yaml").read_text()),
         yaml.safe_load(basic_spec(8080))]
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

# YAML-level trouble that no mutation of parsed data can make.
TEXT_SNIPPETS = [
    "a: &a [*a]\n",  # a recursive alias
    "l0: &l0 [x, x, x, x, x, x, x, x, x]\nl1: &l1 [*l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0, *l0]\n"
    "l2: &l2 [*l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1, *l1]\nl3: &l3 [*l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2, *l2]\n"
    "l4: [*l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3, *l3]\n",  # billion laughs, small
    "name: twice\n", "\tname: tab\n", "\ufeff", "services: !!python/object:os.system {}\n", "- [\n", "{{{{\n",
    "x: " + "[" * 300 + "]" * 300 + "\n", "? [a, b]\n: c\n", "name: " + "é" * 5000 + "\n",
]


def _spec_check(text: str) -> str:
    """'accepted' or 'refused' (with one short error naming the file); anything else fails."""
    try:
        parse_stack(text, CAMPSITE / "symphony.yaml")  # sources resolve next to the campsite example
    except SpecError as exc:
        message = str(exc)
        assert "symphony.yaml" in message, message
        assert len(message) < 1500, f"an error of {len(message)} characters: {message[:300]}..."
        return "refused"
    return "accepted"


@FUZZ
@given(st.sampled_from(range(len(SPECS))), MUTATIONS)
def test_a_mutated_stack_spec_is_accepted_or_refused_with_one_clear_error(which, mutations):
    doc = apply(SPECS[which], mutations)
    _spec_check(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))


@FUZZ
@given(st.sampled_from(range(len(SPECS))), st.sampled_from(TEXT_SNIPPETS), st.integers(0, 10**6))
def test_a_spec_with_broken_yaml_is_refused_with_one_clear_error(which, snippet, pick):
    lines = yaml.safe_dump(SPECS[which], sort_keys=False).splitlines(keepends=True)
    at = pick % (len(lines) + 1)
    _spec_check("".join(lines[:at]) + snippet + "".join(lines[at:]))


# ------------------------------------------------------------------ migrations
BASE = parse_migration(yaml.safe_load("""
operations:
  - create_table:
      name: readings
      columns:
        - {name: id, type: serial, pk: true}
        - {name: station, type: text, unique: true}
        - {name: temp, type: real, nullable: true, check: {name: temp_range, constraint: temp > -100}}
  - create_table:
      name: stations
      columns:
        - {name: code, type: text, pk: true}
"""), Path("01_base.yaml"))
EVERY_OPERATION = yaml.safe_load("""
operations:
  - add_column: {table: readings, up: temp * 2, column: {name: temp_f, type: real, nullable: true,
                 references: {name: fk_station, table: stations, column: code}}}
  - alter_column: {table: readings, column: station, type: varchar(64), up: station, down: station}
  - alter_column: {table: readings, column: temp, default: "0"}
  - create_index: {name: readings_station_idx, table: readings, columns: [station]}
  - rename_column: {table: readings, from: station, to: station_code}
  - drop_constraint: {table: readings, name: temp_range, up: temp, down: temp}
  - rename_constraint: {table: readings, from: readings_station_key, to: readings_code_key}
  - create_constraint: {table: stations, name: code_length, type: check, check: length(code) > 1,
                        columns: [code], up: {code: code}, down: {code: code}}
  - set_replica_identity: {table: stations, identity: {type: full}}
  - sql: {up: SELECT 1, down: SELECT 1}
  - rename_table: {from: stations, to: sites}
  - drop_column: {table: readings, column: temp_f, down: "0"}
  - drop_table: {name: sites}
""")
MIGRATIONS = [EVERY_OPERATION] + [yaml.safe_load(p.read_text())
                                  for p in sorted((CAMPSITE / "v2" / "migrations").glob("*.yaml"))]


def _base_schema() -> Schema:
    schema = Schema("public")
    for op in operations(BASE):
        op.apply(schema)
    return schema


def test_the_valid_migration_the_fuzzer_starts_from_is_valid():
    migration = parse_migration(EVERY_OPERATION, Path("02_every.yaml"))
    schema = _base_schema()
    for op in operations(migration):
        op.apply(schema)


@FUZZ
@given(st.sampled_from(range(len(MIGRATIONS))), MUTATIONS)
def test_a_mutated_migration_is_accepted_or_refused_with_one_clear_error(which, mutations):
    doc = apply(MIGRATIONS[which], mutations)
    try:
        migration = parse_migration(doc, Path("02_fuzzed.yaml"))
    except SpecError as exc:
        assert "02_fuzzed.yaml" in str(exc) and len(str(exc)) < 1500, str(exc)[:300]
        return
    schema = _base_schema()
    for op in operations(migration):  # as the engine checks a file before anything runs
        try:
            op.apply(schema)
        except (KeyError, ValueError):  # the engine's check turns these into a SpecError naming the file
            return


MIGRATION_TEXT = [
    "operations: &o\n  - sql: {up: *o}\n", "[" * 5000 + "]" * 5000, "operations: " + "[" * 300 + "]" * 300 + "\n",
    "operations:\n  - ? [a]\n    : b\n", "operations: [{sql: {up: !!binary aGVsbG8=}}]\n", "\ufeffoperations: []\n",
    "operations: [{create_table: {name: .nan, columns: [{name: .inf, type: text}]}}]\n", "{", "null", "- 1\n",
]


@FUZZ
@given(st.sampled_from(MIGRATION_TEXT), st.sampled_from([".yaml", ".json"]))
def test_a_migration_file_that_is_not_a_migration_is_refused_with_one_clear_error(tmp_path_factory, text, suffix):
    path = tmp_path_factory.mktemp("migration") / f"02_broken{suffix}"
    path.write_text(text)
    try:
        load_migration(path)
    except SpecError as exc:
        assert str(exc).startswith(str(path)) and len(str(exc)) < 1500, str(exc)[:300]


# ------------------------------------------------------------------ command lines
READ_ONLY = ["plan", "status", "history", "graph", "logs", "render", "export", "migrate", "schema", "rollback",
             "restore", "backup", "nope", ""]
TOKENS = st.one_of(
    st.sampled_from(["--json", "--target", "web", "db", "--format", "dot", "mermaid", "svg", "--limit", "-n",
                     "--lines", "--to", "--service", "status", "terraform", "-o", "--runtime", "kubernetes",
                     "--show-secrets", "--detailed-exitcode", "--yes", "-y", "--help", "--debug-x", ".", "..",
                     "/nonexistent", "symphony.yaml", "start", "complete", "0", "-1", "99999999999999"]),
    st.sampled_from([s for s in ODD_STRINGS if "\x00" not in s]),
    st.text(max_size=12).filter(lambda s: "\x00" not in s))  # argv cannot hold a NUL byte


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz-stack")
    (folder / "symphony.yaml").write_text(basic_spec(8080))
    (folder / "app").mkdir()
    return folder


def assert_one_clear_outcome(args: list[str], result: Any) -> str:
    """What a command line must give: success, or one message on stderr with exit 2, never a traceback;
    `plan --detailed-exitcode` follows Terraform (0 no changes, 2 changes or a usage error, 1 an error
    with its message). Returns 'accepted' or 'refused'. Shared with bench/fuzz.py."""
    said = f"symphony {' '.join(args)}"
    assert result.exception is None or isinstance(result.exception, SystemExit), f"{said} raised {result.exception!r}"
    assert "Traceback" not in result.output + result.stderr, said
    if args[:1] == ["plan"] and "--detailed-exitcode" in args:
        assert result.exit_code in (0, 1, 2), f"{said}: exit {result.exit_code}: {result.stderr[-300:]}"
        assert result.exit_code == 0 or (result.stdout + result.stderr).strip(), f"{said}: exit {result.exit_code}, silent"
        return "refused" if result.exit_code == 1 or result.stderr.strip() else "accepted"
    assert result.exit_code in (0, 2), f"{said}: exit {result.exit_code}: {result.stderr[-300:]}"
    assert result.exit_code == 0 or result.stderr.strip(), f"{said}: exit 2 with nothing on stderr"
    return "accepted" if result.exit_code == 0 else "refused"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(st.sampled_from(READ_ONLY), st.lists(TOKENS, max_size=5))
def test_a_mutated_command_line_succeeds_or_fails_with_one_clear_error(stack_dir, monkeypatch, command, tokens):
    from symphony.cli.main import cli

    monkeypatch.chdir(stack_dir)
    args = [a for a in [command, *tokens] if a != ""]
    result = CliRunner().invoke(cli, args, catch_exceptions=True)
    assert_one_clear_outcome(args, result)
