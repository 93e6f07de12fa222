"""The spec loader: good specs load; every bad one gives one SpecError naming file, key, line and fix."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from symphony.errors import SpecError
from symphony.spec import json_schema, load_stack, parse_stack

GOOD = """\
name: campsite
services:
  db:
    postgres:
      version: 15
      databases: [campsite]
  api:
    run: python -m campsite.api
    source: ./app
    port: 8080
    health: /healthz
    env:
      DATABASE_URL: ${db.url}
  ingest:
    job: [python, -m, campsite.ingest]
    source: ./app
    env: {DATABASE_URL: "${db.url}"}
  compute:
    job: python -m campsite.compute
    source: ./app
    schedule: "0 * * * *"
    depends_on: [ingest]
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    return tmp_path


def parse(folder: Path, text: str):
    file = folder / "symphony.yaml"
    file.write_text(textwrap.dedent(text))
    return load_stack(folder)


def error(folder: Path, text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        parse(folder, text)
    return info.value


def test_the_issue_example_loads(folder):
    stack = parse(folder, GOOD)
    assert stack.name == "campsite"
    assert stack.file == folder / "symphony.yaml"
    api = stack.services["api"]
    assert api.kind == "service" and api.command() == ["python", "-m", "campsite.api"]
    assert api.source == folder / "app"
    assert api.bind == "127.0.0.1"
    assert stack.services["ingest"].command() == ["python", "-m", "campsite.ingest"]
    assert stack.services["db"].postgres.databases == ["campsite"]
    assert stack.dependencies("api") == {"db"}
    assert stack.dependencies("compute") == {"ingest"}
    assert stack.dependents("db") == {"api", "ingest"}


def test_durations_and_booleans_are_normalised(folder):
    stack = parse(folder, GOOD.replace("    health: /healthz\n", "    health: /healthz\n    stop_grace: 1m30s\n")
                  .replace("      DATABASE_URL: ${db.url}\n", "      DATABASE_URL: ${db.url}\n      DEBUG: true\n      N: 3\n"))
    api = stack.services["api"]
    assert api.stop_grace == 90.0
    assert stack.services["db"].postgres.contract.after is None  # the window closes at the next migration
    windowed = parse(folder, GOOD.replace("version: 15", "version: 15\n      contract: {after: 1d12h}"))
    assert windowed.services["db"].postgres.contract.after == 129600.0
    assert api.env["DEBUG"] == "true" and api.env["N"] == "3"


@pytest.mark.parametrize(
    ("edit", "line", "key", "needles"),
    [
        (("health:", "helth:"), 11, "services.api.helth", ["unknown key 'helth'", "did you mean 'health'"]),
        (("version: 15", "version: fifteen"), 5, "services.db.postgres.version", ["expected an integer"]),
        (("version: 15", "version: 15\n      contract: {after: soon}"), 6, "services.db.postgres.contract.after",
         ["expected a duration", "24h"]),
        (("version: 15", "version: 15\n      contract: {afer: 1h}"), 6, "services.db.postgres.contract.afer",
         ["unknown key 'afer'", "did you mean 'after'"]),
        (("port: 8080", "port: 99999"), 10, "services.api.port", ["99999"]),
        (("${db.url}", "${dbx.url}"), 13, "services.api.env.DATABASE_URL", ["no service named 'dbx'", "did you mean 'db'"]),
        (("${db.url}", "${db.uri}"), 13, "services.api.env.DATABASE_URL", ["no output 'uri'", "url"]),
        (("${db.url}", "${db"), 13, "services.api.env.DATABASE_URL", ["unclosed reference"]),
        (("depends_on: [ingest]", "depends_on: [ingets]"), 22, "services.compute.depends_on.0", ["did you mean 'ingest'"]),
        (("schedule: \"0 * * * *\"", "schedule: \"every hour\""), 21, "services.compute.schedule", ["cron"]),
        (("source: ./app\n    port", "source: ./nowhere\n    port"), 9, "services.api.source", ["does not exist"]),
        (("name: campsite", "name: Camp Site"), 1, "name", ["invalid stack name"]),
        (("run: python -m campsite.api", "job: x\n    run: python -m campsite.api"), 8, "services.api.job",
         ["only one of postgres, run or job"]),
        (("    health: /healthz\n", "    health: healthz\n"), 11, "services.api.health", ["starting with /"]),
    ],
)
def test_bad_specs_name_file_line_and_key(folder, edit, line, key, needles):
    old, new = edit
    assert old in GOOD
    exc = error(folder, GOOD.replace(old, new, 1))
    assert exc.file == folder / "symphony.yaml"
    assert exc.key == key, str(exc)
    assert exc.line == line, str(exc)
    for needle in needles:
        assert needle in str(exc)


def test_cycle_is_reported_with_its_path(folder):
    exc = error(folder, GOOD.replace("depends_on: [ingest]", "depends_on: [ingest]\n  ingest2:\n    job: x")
                .replace("  ingest:\n    job: [python, -m, campsite.ingest]\n", "  ingest:\n    job: x\n    depends_on: [compute]\n"))
    assert "dependency cycle" in str(exc)
    assert "compute -> ingest -> compute" in str(exc) or "ingest -> compute -> ingest" in str(exc)


def test_duplicate_ports_and_health_without_port(folder):
    exc = error(folder, GOOD + "  other:\n    run: x\n    port: 8080\n")
    assert "port 8080 is also used by services.api.port" in str(exc)
    assert exc.key == "services.other.port" and exc.line == 25
    exc = error(folder, GOOD.replace("    port: 8080\n", ""))
    assert exc.key == "services.api.health" and "needs a port" in str(exc)


def test_job_outputs_and_misplaced_keys(folder):
    exc = error(folder, GOOD.replace("depends_on: [ingest]", "env: {X: '${ingest.url}'}"))
    assert "is a job and has no outputs" in str(exc) and "depends_on: [ingest]" in str(exc)
    exc = error(folder, GOOD.replace("    schedule:", "    port: 9000\n    schedule:"))
    assert exc.key == "services.compute.port" and "only for run services" in str(exc)


def test_yaml_syntax_duplicate_keys_and_empty_files(folder):
    exc = error(folder, "name: x\nservices:\n  a:\n    run: [unclosed\n")
    assert "not valid YAML" in str(exc) and exc.line is not None
    exc = error(folder, GOOD + "  api:\n    run: y\n")
    assert "'api' is given twice" in str(exc) and exc.line == 23
    assert "empty" in str(error(folder, ""))
    assert "mapping" in str(error(folder, "- a\n- b\n"))
    assert "no services" in str(error(folder, "name: x\nservices: {}\n"))


def test_missing_spec_file_is_clear(tmp_path):
    with pytest.raises(SpecError, match="no symphony.yaml in"):
        load_stack(tmp_path)
    with pytest.raises(SpecError, match="no such file"):
        load_stack(tmp_path / "nope.yaml")


def test_json_schema_describes_the_spec():
    schema = json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == {"name", "runtime", "kubernetes", "services"}
    assert schema["additionalProperties"] is False
    service = schema["$defs"]["Service"]
    assert {"run", "job", "postgres", "env", "depends_on", "schedule"} <= set(service["properties"])
    json.dumps(schema)


def test_a_thousand_services_load_fast():
    """Not a benchmark (bench/plan_scale.py measures); guards against accidental quadratic loading."""
    lines = ["name: big", "services:"]
    for i in range(1000):
        lines += [f"  s{i}:", "    job: 'true'"] + ([f"    depends_on: [s{i - 1}]"] if i else [])
    text = "\n".join(lines) + "\n"
    started = time.perf_counter()
    stack = parse_stack(text, Path("/tmp/big/symphony.yaml"))
    assert len(stack.services) == 1000
    assert stack.dependencies("s999") == {"s998"}
    assert time.perf_counter() - started < 5  # generous: it takes ~0.1 s; 1000x slower would be a bug


@pytest.mark.parametrize("text, needle", [
    ("name: x\nservices: &s\n  db: *s\n", "an alias refers to the anchor it is inside of"),
    ("name: x\n? [a, b]\n: c\nservices: {}\n", "a key must be a name"),
    ("name: x\nservices: " + "[" * 300 + "]" * 300 + "\n", "nested more than 64 levels deep"),
    ("name: x\nl0: &l0 [" + ", ".join(["x"] * 60) + "]\nl1: &l1 [" + ", ".join(["*l0"] * 60) + "]\n"
     "l2: [" + ", ".join(["*l1"] * 60) + "]\nservices: {}\n", "holds more than 100000 values"),
], ids=["recursive alias", "list as a key", "deep nesting", "aliases of aliases"])
def test_yaml_that_would_never_end_or_crash_the_loader_is_refused(folder, text, needle):
    """Found by tests/fuzz: each was a RecursionError or TypeError traceback (or an exponential walk)."""
    with pytest.raises(SpecError, match=needle) as info:
        parse_stack(text, folder / "symphony.yaml")
    assert str(info.value).startswith(str(folder / "symphony.yaml"))


def test_a_stack_path_the_system_cannot_read_is_one_clear_error():
    """Found by bench/fuzz.py: a name longer than the system allows was an OSError traceback."""
    from symphony.spec.loader import find_spec

    with pytest.raises(SpecError, match="cannot be read: File name too long"):
        find_spec("x" * 100_000)
