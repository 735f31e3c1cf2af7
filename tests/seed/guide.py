"""The seed guide's Python examples, taken from the guide's own text and run unchanged.

The guide imports from `src.utils.*`, the layout of the program it was written for; the
test registers those module names for marketscan's modules, so the example text itself is
never edited. Top-level `await` (the LocalStateManager example) is compiled as such.
"""

from __future__ import annotations

import ast
import re
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

GUIDE = Path(__file__).with_name("state-management-guide.md")
_HEADING = re.compile(r"^#{2,3} (.+)$", re.M)
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


def example(title: str) -> str:
    """The first Python block of the section headed `title`, exactly as the guide has it."""
    sections = _HEADING.split(GUIDE.read_text(encoding="utf-8"))
    # split() alternates: text before the first heading, then (title, body) pairs.
    for heading, body in zip(sections[1::2], sections[2::2], strict=True):
        if heading.strip() == title and (block := _BLOCK.search(body)):
            return block[1]
    raise LookupError(f"the guide has no Python example under the heading {title!r}")


def compiled(title: str) -> types.CodeType:
    return compile(
        example(title), f"<guide: {title}>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    )


@contextmanager
def guide_imports() -> Iterator[None]:
    """`src.utils.state_manager` and `src.utils.database` resolve to marketscan's modules."""
    from worker.db import engine as db
    from worker.state import local as local_state
    from worker.state import manager as state_manager

    facade = types.ModuleType("src.utils.state_manager")
    facade.__dict__.update(
        StateManager=state_manager.StateManager, LocalStateManager=local_state.LocalStateManager
    )
    names: dict[str, Any] = {
        "src": types.ModuleType("src"),
        "src.utils": types.ModuleType("src.utils"),
        "src.utils.state_manager": facade,
        "src.utils.database": db,
    }
    saved = {name: sys.modules.get(name) for name in names}
    sys.modules.update(names)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
