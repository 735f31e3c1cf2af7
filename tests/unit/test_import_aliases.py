"""No import is renamed to a single letter: `from worker.domain import validation as v` makes
a reader look up what `v.count_of` is; the module's own name says it.

Read from the sources with `ast`, so an import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREES = ("worker", "tasks", "models", "migrations", "bench", "examples", "tests")


def one_letter_aliases(source: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.extend(
                f"{source.relative_to(ROOT)}:{node.lineno}: {alias.name} as {alias.asname}"
                for alias in node.names
                if alias.asname is not None and len(alias.asname) == 1
            )
    return found


def test_no_import_is_renamed_to_one_letter() -> None:
    # Given every Python source of the project
    sources = [path for tree in TREES for path in sorted((ROOT / tree).rglob("*.py"))]
    sources.append(ROOT / "celeryconfig.py")
    assert len(sources) > 100, f"too few sources under {ROOT}"

    # When their imports are read
    offending = [line for source in sources for line in one_letter_aliases(source)]

    # Then none renames what it imports to a single letter
    assert offending == []
