"""The layering the design promises, read from the code's imports (ast): the runtimes import nothing
of the engine nor each other; nothing outside runtimes/ imports a runtime package except the one
factory; the workspace and the CLI never branch on a runtime's name; no import circles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "symphony"
ENGINE = ("symphony.plan", "symphony.apply", "symphony.workspace", "symphony.cli", "symphony.graph",
          "symphony.state", "symphony.coordination", "symphony.desired")
RUNTIMES = ("symphony.runtimes.local", "symphony.runtimes.kubernetes")
FACTORY = "symphony.runtimes"  # runtimes/__init__.py: opens the runtime a stack names


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every symphony module `path` imports (at any depth: lazy imports count), with its line."""
    tree = ast.parse(path.read_text(), str(path))
    here = _module(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.append((base, node.lineno))
            found += [(f"{base}.{a.name}", node.lineno) for a in node.names]
    return [(name, line) for name, line in found if name == "symphony" or name.startswith("symphony.")]


MODULES = {_module(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _under(name: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _known(name: str) -> str | None:
    """The module an imported name lives in (a name imported from a module maps to that module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _breaks() -> list[str]:
    out = []
    for module, path in MODULES.items():
        for name, line in _imports(path):
            target = _known(name)
            if target is None:
                continue
            where = f"{path.relative_to(SRC)}:{line} imports {target}"
            for runtime in RUNTIMES:
                if _under(module, runtime):
                    if _under(target, ENGINE):
                        out.append(f"{where}: a runtime imports the engine")
                    others = [r for r in RUNTIMES if r != runtime]
                    if _under(target, tuple(others)):
                        out.append(f"{where}: a runtime imports another runtime")
            if not _under(module, RUNTIMES) and module != FACTORY and _under(target, RUNTIMES):
                out.append(f"{where}: only the factory (symphony.runtimes) opens a runtime package")
    return out


def test_the_runtimes_import_neither_the_engine_nor_each_other_and_only_the_factory_opens_them() -> None:
    assert _breaks() == []


def test_there_are_no_import_circles() -> None:
    """Every import counts: module-level, lazy (inside a function) and for type checking only."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        deps: set[str] = set()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                target = _known(name) if name.startswith("symphony") else None
                if target and target != module and not module.startswith(target + "."):
                    deps.add(target)
        graph[module] = deps
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]) if nxt in path else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


@pytest.mark.parametrize("file", ["workspace.py", "cli/main.py", "plan.py", "apply.py", "coordination.py"])
def test_the_engine_never_branches_on_a_runtimes_name(file: str) -> None:
    tree = ast.parse((PACKAGE / file).read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            text = ast.unparse(node)
            if any(isinstance(c, ast.Constant) and c.value in ("local", "kubernetes") for c in
                   [node.left, *node.comparators]):
                found.append(f"{file}:{node.lineno}: {text}")
        if isinstance(node, ast.Attribute) and node.attr in ("kube", "runtime_name"):
            found.append(f"{file}:{node.lineno}: .{node.attr}")
    assert found == []


def test_the_checker_sees_a_break() -> None:
    """The rules above are not vacuous: a runtime module that imported the engine would be caught."""
    path = PACKAGE / "runtimes" / "local" / "planner.py"
    imports = [target for name, _ in _imports(path) if (target := _known(name))]
    assert "symphony.runtimes.base" in imports
    assert _under("symphony.plan", ENGINE) and _under("symphony.runtimes.local.runtime", RUNTIMES)
