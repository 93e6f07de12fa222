"""Fuzzing at scale: stack specs, pgroll migration files and command lines mutated from valid documents
(tests/fuzz/_mutate.py), as the suite's tests/fuzz/test_inputs.py does with a few hundred inputs. Each input
must give success or one short error (exit code 2 on the command line), never a traceback. Prints one JSON
object: per target, the inputs tried, how many were accepted and refused, the failures (shrunk by
hypothesis) and the time taken.

    .venv/bin/python bench/fuzz.py [--inputs 10000] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "fuzz")]

import test_inputs as t  # noqa: E402
from _mutate import MUTATIONS, apply  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def run(name: str, strategy: Any, check: Callable[..., str], inputs: int, seed: int) -> dict[str, Any]:
    """`check(*drawn)` returns 'accepted' or 'refused' or raises (a failure, which hypothesis shrinks)."""
    outcomes = {"accepted": 0, "refused": 0}
    started = time.time()

    @settings(max_examples=inputs, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              derandomize=False)
    @given(strategy)
    def prop(drawn: tuple[Any, ...]) -> None:
        outcomes[check(*drawn)] += 1

    failure = None
    try:
        prop._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
        prop()
    except Exception as exc:  # the shrunk failing input(s): each of a group said
        parts = exc.exceptions if isinstance(exc, ExceptionGroup) else [exc]
        failure = "; ".join(f"{type(e).__name__}: {str(e)[:500]}" for e in parts)
    print(f"{name}: {outcomes} in {time.time() - started:.1f}s" + (f" FAILED {failure}" if failure else ""),
          file=sys.stderr)
    return {"target": name, "inputs": sum(outcomes.values()), **outcomes, "failures": [failure] if failure else [],
            "seconds": round(time.time() - started, 1)}


def spec(which: int, mutations: list[Any]) -> str:
    import yaml

    return t._spec_check(yaml.safe_dump(apply(t.SPECS[which], mutations), allow_unicode=True, sort_keys=False))


def spec_text(which: int, snippet: str, pick: int) -> str:
    import yaml

    lines = yaml.safe_dump(t.SPECS[which], sort_keys=False).splitlines(keepends=True)
    at = pick % (len(lines) + 1)
    return t._spec_check("".join(lines[:at]) + snippet + "".join(lines[at:]))


def migration(which: int, mutations: list[Any]) -> str:
    from symphony.errors import SpecError
    from symphony.migrations.model import parse_migration
    from symphony.migrations.ops import operations

    try:
        m = parse_migration(apply(t.MIGRATIONS[which], mutations), Path("02_fuzzed.yaml"))
    except SpecError as exc:
        assert "02_fuzzed.yaml" in str(exc) and len(str(exc)) < 1500, str(exc)[:300]
        return "refused"
    schema = t._base_schema()
    for op in operations(m):
        try:
            op.apply(schema)
        except (KeyError, ValueError):
            return "refused"
    return "accepted"


def command_line(folder: Path) -> Callable[..., str]:
    import os

    from click.testing import CliRunner

    from symphony.cli.main import cli

    def check(command: str, tokens: list[str]) -> str:
        os.chdir(folder)
        args = [a for a in [command, *tokens] if a != ""]
        return t.assert_one_clear_outcome(args, CliRunner().invoke(cli, args, catch_exceptions=True))

    return check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10_000, help="inputs in all, shared by the targets")
    parser.add_argument("--seed", type=int, default=random.randrange(2**32))
    args = parser.parse_args()
    n = max(1, args.inputs * 3 // 10)  # 30% each for the spec, migration and command-line targets, 10% broken YAML
    folder = Path(tempfile.mkdtemp(prefix="symphony-fuzz-"))
    (folder / "symphony.yaml").write_text(t.basic_spec(8080))
    (folder / "app").mkdir()
    indexes = st.sampled_from(range(len(t.SPECS)))
    results = [
        run("stack spec (mutated data)", st.tuples(indexes, MUTATIONS), spec, n, args.seed),
        run("stack spec (broken YAML)", st.tuples(indexes, st.sampled_from(t.TEXT_SNIPPETS), st.integers(0, 10**6)),
            spec_text, max(1, args.inputs - 3 * n), args.seed),
        run("migration file", st.tuples(st.sampled_from(range(len(t.MIGRATIONS))), MUTATIONS), migration, n,
            args.seed),
        run("command line", st.tuples(st.sampled_from(t.READ_ONLY), st.lists(t.TOKENS, max_size=5)),
            command_line(folder), n, args.seed),
    ]
    print(json.dumps({"seed": args.seed, "inputs": sum(r["inputs"] for r in results),
                      "failures": sum(len(r["failures"]) for r in results), "targets": results}, indent=2))


if __name__ == "__main__":
    main()
