"""Read symphony.yaml into a Stack, turning every problem into one SpecError naming file, key and line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from symphony.errors import SpecError
from symphony.spec.models import (
    ContractSpec,
    KubernetesSpec,
    PostgresSpec,
    RolloutSpec,
    Service,
    Stack,
    describe,
    did_you_mean,
)

SPEC_FILE = "symphony.yaml"
_SPEC_NAMES = (SPEC_FILE, "symphony.yml")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path_ = tuple[str | int, ...]


def find_spec(path: str | os.PathLike[str] = ".") -> Path:
    """The spec file for a stack folder or file argument."""
    p = Path(path).expanduser()
    try:
        p.stat()
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:  # a name too long, a loop of links, no permission, a NUL byte
        shown = str(p) if len(str(p)) <= 80 else str(p)[:77] + "..."
        raise SpecError(f"{shown}: cannot be read: {getattr(exc, 'strerror', None) or exc}",
                        fix="give the stack folder or its symphony.yaml") from None
    if p.is_dir():
        for name in _SPEC_NAMES:
            if (p / name).is_file():
                return (p / name).resolve()
        raise SpecError(
            f"no {SPEC_FILE} in {p.resolve()}",
            fix="give the stack folder or its spec file, e.g. symphony plan examples/campsite",
        )
    if p.is_file():
        return p.resolve()
    raise SpecError(f"{p}: no such file or folder", fix="give the stack folder or its symphony.yaml")


def load_stack(path: str | os.PathLike[str] = ".") -> Stack:
    """Load and check a stack spec. Raises SpecError (never a traceback) on any problem."""
    file = find_spec(path)
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the spec: {exc}", file=file) from None
    return parse_stack(text, file)


def parse_stack(text: str, file: Path) -> Stack:
    """Check `text` (the contents of `file`) and build the Stack."""
    loader = _Loader(text)
    lines: dict[Path_, int] = {}
    try:
        root = loader.get_single_node()  # one parse: the nodes give line numbers, then the data
        if root is not None:
            _check_nodes(root, (), lines, file, _Walk())  # before building anything from them
        data = loader.construct_document(root) if root is not None else None
    except RecursionError:
        raise SpecError(f"nested more than {MAX_DEPTH} levels deep", file=file,
                        fix="a stack spec is a few levels deep; check the brackets") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(
            f"not valid YAML: {problem}",
            file=file,
            line=mark.line + 1 if mark else None,
            fix="check the indentation and quotes around this line",
        ) from None
    finally:
        loader.dispose()
    if root is None:
        raise SpecError("the spec is empty", file=file, fix="write name: and services: (see examples/campsite)")
    if not isinstance(data, dict):
        raise SpecError(
            f"expected a mapping with name: and services:, got {describe(data)}", file=file, line=1,
            fix="see examples/campsite/symphony.yaml",
        )
    try:
        stack = Stack.model_validate(data, context={"file": file})
    except ValidationError as exc:
        raise _spec_error(exc, data, lines, file) from None
    _check_sources(stack, lines)
    return stack


MAX_DEPTH = 64
MAX_VALUES = 100_000


class _Walk:
    """What the walk of the nodes has seen: how many values, which nodes are open (an alias of an
    enclosing anchor would make the data infinite; aliases of aliases can make it huge)."""

    def __init__(self) -> None:
        self.values = 0
        self.open: set[int] = set()


def _check_nodes(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: Path, walk: _Walk) -> None:
    """Record the line of every key and value; refuse duplicate keys (YAML would keep the last silently),
    recursive aliases, nesting deeper than MAX_DEPTH and more than MAX_VALUES values."""
    line = node.start_mark.line + 1
    lines.setdefault(path, line)
    walk.values += 1
    if walk.values > MAX_VALUES:
        raise SpecError(f"the spec holds more than {MAX_VALUES} values", file=file, line=line,
                        fix="aliases that repeat aliases multiply; write the values out")
    if len(path) > MAX_DEPTH:
        raise SpecError(f"nested more than {MAX_DEPTH} levels deep", file=file, key=_dotted(path[:3]), line=line,
                        fix="a stack spec is a few levels deep; check the brackets")
    if id(node) in walk.open:
        raise SpecError("an alias refers to the anchor it is inside of (the value would never end)", file=file,
                        key=_dotted(path), line=line, fix="move the alias out of its anchor's value")
    walk.open.add(id(node))
    try:
        _check_children(node, path, lines, file, walk)
    finally:
        walk.open.discard(id(node))


def _check_children(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: Path, walk: _Walk) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise SpecError("a key must be a name, not a list or a mapping", file=file, key=_dotted(path) or None,
                                line=key_node.start_mark.line + 1, fix="write the key as plain text")
            key = key_node.value
            if key in seen:
                raise SpecError(
                    f"'{key}' is given twice", file=file, key=_dotted((*path, key)), line=key_node.start_mark.line + 1,
                    fix="remove or rename one of them",
                )
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _check_nodes(value_node, (*path, key), lines, file, walk)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_nodes(item, (*path, i), lines, file, walk)


def _check_sources(stack: Stack, lines: dict[Path_, int]) -> None:
    for name, svc in stack.services.items():
        folder = svc.postgres.migrations if svc.postgres is not None else None
        if folder is not None and not folder.is_dir():
            path: Path_ = ("services", name, "postgres", "migrations")
            raise SpecError(
                f"migrations folder {folder} does not exist", file=stack.file, key=_dotted(path),
                line=_line(lines, path), fix="give the folder of the migration files, relative to the spec's folder",
            )
        if svc.schema_ is not None:
            _check_schema(stack, name, svc.schema_, lines)
        if svc.source is not None and not svc.source.is_dir():
            path = ("services", name, "source")
            raise SpecError(
                f"source folder {svc.source} does not exist", file=stack.file, key=_dotted(path),
                line=_line(lines, path), fix="give the folder of the code, relative to the spec's folder",
            )


def _check_schema(stack: Stack, name: str, schema: str, lines: dict[Path_, int]) -> None:
    """`schema: latest` or a migration name of the database the service uses."""
    path = ("services", name, "schema")
    dbs = [n for n in stack.dependencies(name) if (s := stack.services[n]).postgres is not None and s.postgres.migrations]
    if not dbs:
        raise SpecError(
            "schema needs a postgres service with migrations that this service uses", file=stack.file,
            key=_dotted(path), line=_line(lines, path), fix="reference it in env (${db.url}) and set postgres.migrations",
        )
    if schema == "latest":
        return
    from symphony.migrations.model import migration_files

    names = {p.stem for db in dbs for p in migration_files(stack.services[db].postgres.migrations)}  # type: ignore[union-attr, arg-type]
    if schema not in names:
        raise SpecError(
            f"no migration named '{schema}'", file=stack.file, key=_dotted(path), line=_line(lines, path),
            fix=did_you_mean(schema, sorted(names), "migrations") + " (or latest)",
        )


# ------------------------------------------------------------------------------------------- errors
def _spec_error(exc: ValidationError, data: dict[str, Any], lines: dict[Path_, int], file: Path) -> SpecError:
    """The problem on the earliest line among pydantic's errors, as one SpecError."""
    found: list[tuple[Path_, str, str | None]] = []
    for err in exc.errors(include_url=False):
        loc = _clean_loc(err["loc"])
        if err["type"] == "symphony":
            ctx = err.get("ctx") or {}
            for item in ctx.get("problems") or [{"at": ctx.get("at", ()), "message": ctx["message"], "fix": ctx.get("fix")}]:
                found.append(((*loc, *item["at"]), item["message"], item["fix"]))
        else:
            found.append(_translate(err, loc, data))
    found.sort(key=lambda f: _line(lines, f[0]) or 0)
    path, message, fix = found[0]
    return SpecError(message, file=file, key=_dotted(path) or None, line=_line(lines, path), fix=fix)


def _clean_loc(loc: tuple[Any, ...]) -> Path_:
    """pydantic's location without its internal steps ('[key]', function-after[...], union members)."""
    out: list[str | int] = []
    for part in loc:
        if isinstance(part, str) and ("[" in part or part in ("function-after", "function-before")):
            continue
        out.append(part)
    return tuple(out)


def _model_at(path: Path_) -> type[BaseModel] | None:
    """Which model holds the mapping at `path`."""
    if not path:
        return Stack
    if path == ("kubernetes",):
        return KubernetesSpec
    if len(path) == 2 and path[0] == "services":
        return Service
    if len(path) == 3 and path[0] == "services" and path[2] == "postgres":
        return PostgresSpec
    if len(path) == 3 and path[0] == "services" and path[2] == "rollout":
        return RolloutSpec
    if len(path) == 4 and path[0] == "services" and path[2:] == ("postgres", "contract"):
        return ContractSpec
    return None


def _keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items() if name not in ("file", "root")]


def _value_at(data: Any, path: Path_) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _translate(err: Any, loc: Path_, data: dict[str, Any]) -> tuple[Path_, str, str | None]:
    kind = err["type"]
    key = loc[-1] if loc else ""
    parent = loc[:-1]
    if kind == "extra_forbidden":
        model = _model_at(parent)
        keys = _keys(model) if model else []
        return loc, f"unknown key '{key}'", did_you_mean(key, keys)
    if kind == "missing":
        model = _model_at(parent)
        field = model.model_fields.get(str(key)) if model else None
        hint = f"add {key}: ({field.description})" if field and field.description else f"add {key}:"
        return loc, f"missing required key '{key}'", hint
    value = _value_at(data, loc)
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return loc, f"expected an integer, got {describe(value)}", None
    if kind in ("string_type",):
        return loc, f"expected a string, got {describe(value)}", None
    if kind in ("list_type",):
        return loc, f"expected a list, got {describe(value)}", "write [a, b] or one '- item' per line"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return loc, f"expected a mapping, got {describe(value)}", "write key: value pairs, indented below it"
    if kind == "literal_error":
        expected = (err.get("ctx") or {}).get("expected", "")
        return loc, f"unsupported value {describe(value)}", f"expected {expected}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return loc, f"{describe(value)} is out of range: {err['msg'].lower()}", None
    if kind == "string_pattern_mismatch":
        return loc, f"invalid value {describe(value)}", err["msg"]
    return loc, err["msg"], None


def _line(lines: dict[Path_, int], path: Path_) -> int | None:
    """The line of `path`, or of its nearest ancestor that has one."""
    for n in range(len(path), -1, -1):
        line = lines.get(tuple(path[:n]))
        if line is not None:
            return line
    return None


def _dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path)
