"""The dependency graph of a stack: order, closures for --target, cycles, and pictures (DOT, Mermaid).

Pure data: built from `{service: dependencies}`; every method is deterministic (names sorted) so
plans, graphs and tests are stable from run to run.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from typing import Any, Protocol


class _Stack(Protocol):
    """What a graph needs of a stack (symphony.spec.Stack): the spec imports this module, not back."""

    @property
    def services(self) -> Mapping[str, Any]: ...

    def dependencies(self, name: str) -> set[str]: ...

_SHAPES_DOT = {"postgres": "cylinder", "job": "box", "service": "component"}


class Graph:
    """Services and the services each one needs first."""

    def __init__(self, deps: Mapping[str, Iterable[str]]) -> None:
        self._deps: dict[str, tuple[str, ...]] = {n: tuple(sorted(set(d))) for n, d in deps.items()}
        users: dict[str, set[str]] = {n: set() for n in self._deps}
        for name, needs in self._deps.items():
            for dep in needs:
                users.setdefault(dep, set()).add(name)
        self._users = {n: tuple(sorted(u)) for n, u in users.items()}

    @classmethod
    def from_stack(cls, stack: _Stack) -> Graph:
        return cls({name: stack.dependencies(name) for name in stack.services})

    @property
    def nodes(self) -> list[str]:
        return list(self._deps)

    def dependencies(self, name: str) -> tuple[str, ...]:
        """What `name` needs directly."""
        return self._deps.get(name, ())

    def dependents(self, name: str) -> tuple[str, ...]:
        """What needs `name` directly."""
        return self._users.get(name, ())

    def order(self) -> list[str]:
        """Every node, dependencies before dependents; ties keep the spec's order (Kahn's algorithm)."""
        position = {n: i for i, n in enumerate(self._deps)}
        waiting = {n: sum(1 for d in deps if d in self._deps) for n, deps in self._deps.items()}
        out: list[str] = []
        heap = [(position[n], n) for n, count in waiting.items() if count == 0]
        heapq.heapify(heap)
        while heap:
            _, name = heapq.heappop(heap)
            out.append(name)
            for user in self._users.get(name, ()):
                waiting[user] -= 1
                if waiting[user] == 0:
                    heapq.heappush(heap, (position[user], user))
        if len(out) != len(self._deps):
            cycle = self.find_cycle() or []
            raise ValueError("dependency cycle: " + " -> ".join(cycle))
        return out

    def closure(self, targets: Iterable[str]) -> set[str]:
        """The targets and everything they need, transitively (what `--target` touches)."""
        return self._walk(targets, self._deps)

    def downstream(self, names: Iterable[str]) -> set[str]:
        """Everything that needs any of `names`, transitively (not the names themselves)."""
        names = set(names)
        return self._walk(names, self._users) - names

    @staticmethod
    def _walk(start: Iterable[str], edges: Mapping[str, tuple[str, ...]]) -> set[str]:
        seen: set[str] = set()
        stack = list(start)
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            stack.extend(edges.get(name, ()))
        return seen

    def find_cycle(self) -> list[str] | None:
        """One dependency cycle as [a, b, ..., a] (a needs b ...), or None. Iterative DFS."""
        colour: dict[str, int] = {}  # 1 = on the current path, 2 = done
        for root in self._deps:
            if root in colour:
                continue
            path: list[str] = [root]
            iters = [iter(self._deps[root])]
            colour[root] = 1
            while iters:
                nxt = next(iters[-1], None)
                if nxt is None:
                    colour[path.pop()] = 2
                    iters.pop()
                    continue
                if nxt not in self._deps:
                    continue
                state = colour.get(nxt)
                if state == 1:
                    return path[path.index(nxt):] + [nxt]
                if state is None:
                    colour[nxt] = 1
                    path.append(nxt)
                    iters.append(iter(self._deps[nxt]))
        return None

    # ----------------------------------------------------------------------------------- pictures
    def to_dot(self, kinds: Mapping[str, str] | None = None, name: str = "stack") -> str:
        """Graphviz DOT; an edge points from a service to what it needs."""
        kinds = kinds or {}
        lines = [f'digraph "{name}" {{', "  rankdir=LR;", '  node [fontname="Helvetica"];']
        for node in self._deps:
            kind = kinds.get(node, "service")
            lines.append(f'  "{node}" [label="{node}\\n({kind})", shape={_SHAPES_DOT.get(kind, "box")}];')
        for node, deps in self._deps.items():
            lines.extend(f'  "{node}" -> "{dep}";' for dep in deps)
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self, kinds: Mapping[str, str] | None = None) -> str:
        """A Mermaid flowchart; databases drawn as cylinders, jobs as boxes, services rounded."""
        kinds = kinds or {}
        shapes = {"postgres": ("[(", ")]"), "job": ("[", "]"), "service": ("(", ")")}
        ids = {node: f"n{i}" for i, node in enumerate(self._deps)}
        lines = ["flowchart LR"]
        for node in self._deps:
            kind = kinds.get(node, "service")
            left, right = shapes.get(kind, ("[", "]"))
            lines.append(f'  {ids[node]}{left}"{node} ({kind})"{right}')
        for node, deps in self._deps.items():
            lines.extend(f"  {ids[node]} --> {ids[dep]}" for dep in deps if dep in ids)
        return "\n".join(lines) + "\n"
