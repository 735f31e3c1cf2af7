"""Every Redis key prefix of ours is spelled in worker/redis_keys.py and nowhere else, so the
names deployed data lives under are read, and changed, in one place.

Read from the sources with `ast`: a prefix in a plain string or inside an f-string counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KEYS_MODULE = ROOT / "worker" / "redis_keys.py"
# Flower's `user:password` for `marketscan dev`: a user name, not a Redis key.
NOT_KEYS = {ROOT / "worker" / "devtools" / "devstack.py"}


def spelled_prefixes(source: Path) -> list[str]:
    tree = ast.parse(source.read_text(), filename=str(source))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        f"{source.relative_to(ROOT)}:{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith("marketscan:")
        and id(node) not in docstrings
    ]


def test_only_the_keys_module_spells_a_redis_key_prefix() -> None:
    # Given every runtime module but the keys module
    sources = [
        path
        for tree in ("worker", "tasks")
        for path in sorted((ROOT / tree).rglob("*.py"))
        if path != KEYS_MODULE and path not in NOT_KEYS
    ] + [ROOT / "celeryconfig.py"]
    assert len(sources) > 100, f"too few sources under {ROOT}"

    # When their strings are read
    spelled = [found for source in sources for found in spelled_prefixes(source)]

    # Then none spells a key of ours, and the keys module spells them all
    assert spelled == []
    assert len(spelled_prefixes(KEYS_MODULE)) == 11
