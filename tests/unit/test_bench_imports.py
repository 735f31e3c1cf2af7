"""bench/ imports the package only: helpers it shares with the tests live in worker.devtools
and worker.testing.

Read from the sources with `ast`, so an import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def imported_modules(source: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            modules.add(node.module)
    return modules


def test_no_bench_module_imports_the_test_suite() -> None:
    # Given every module of the bench
    sources = sorted(BENCH.rglob("*.py"))
    assert sources, f"no bench modules under {BENCH}"

    # When their imports are read
    offending = {
        str(source.relative_to(BENCH)): sorted(
            module for module in imported_modules(source) if module.split(".")[0] == "tests"
        )
        for source in sources
    }

    # Then none names a module of tests/
    assert {name: found for name, found in offending.items() if found} == {}
