"""`python -m worker.devtools.import_cycles [ROOT ...]`: fail on any import cycle, naming it.

import-linter's layers hold rooms apart, but a circle inside one room, or one closed by an
import written inside a function, passes it. This reads the sources with `ast`, so every
import counts wherever it is written: a function's body, and `if TYPE_CHECKING:` too (a
module that needs another's types sits above it as surely as one that calls it). `make lint`
runs it over worker/, tasks/, models/ and bench/; it exits 1 and prints each circle as
`a -> b -> ... -> a`.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

DEFAULT_ROOTS = ("worker", "tasks", "models", "bench")


def module_files(base: Path, roots: Iterable[str]) -> dict[str, Path]:
    """Every module under the roots (packages as their `__init__`), by dotted name."""
    found: dict[str, Path] = {}
    for root in roots:
        for path in sorted((base / root).rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement of a module, at any depth."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def absolute_name(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(module: str, path: Path, known: Mapping[str, Path]) -> set[str]:
    """The modules under the roots that `module` imports (a name from a module counts as it)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in import_nodes(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            source = absolute_name(node, module, is_package)
            # `from a import b` imports the module a.b when there is one, else a name of a.
            names = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                for alias in node.names
            ]
        for name in names:
            # `import a.b.c` binds a, but runs a.b.c: the deepest known module is the edge.
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
    return targets


def import_graph(base: Path, roots: Iterable[str] = DEFAULT_ROOTS) -> dict[str, set[str]]:
    known = module_files(base, roots)
    return {module: imports_of(module, path, known) for module, path in known.items()}


def strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one module, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, ())))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def one_cycle(graph: Mapping[str, set[str]], component: list[str]) -> list[str]:
    """A shortest circle through the component's first module, as a path back to it."""
    members = set(component)
    start = component[0]
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for successor in sorted(graph[node] & members):
                if successor == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if successor not in came_from:
                    came_from[successor] = node
                    following.append(successor)
        frontier = following
    raise AssertionError(f"no circle through {start} in {component}")


def cycles(base: Path, roots: Iterable[str] = DEFAULT_ROOTS) -> list[list[str]]:
    """One named circle per knot of modules that import each other."""
    graph = import_graph(base, roots)
    return [one_cycle(graph, component) for component in strongly_connected(graph)]


def main(argv: list[str]) -> int:
    roots = argv or list(DEFAULT_ROOTS)
    found = cycles(Path.cwd(), roots)
    for circle in found:
        print("import cycle: " + " -> ".join(circle))
    if found:
        return 1
    print(f"no import cycle in {', '.join(roots)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
