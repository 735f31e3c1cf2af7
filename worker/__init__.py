"""Marketscan's runtime, in rooms that each depend only on the rooms below them:

    cli/ celery_glue/ devtools/           the ways in: CLI and app client, Celery, dev tools
    chain/                                page runner and slices, lifecycle, recovery
    state/ notify/                        the seed API (StateManager...), Telegram
    db/ markets/                          the only SQL, market sources
    domain/                               values and rules, no I/O

(pyproject.toml's import-linter contracts hold them to it). The public API is re-exported
here and imported on first use, so `import worker` stays light for programs that never
run a worker.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> (module, attribute)
_PUBLIC = {
    "StateManager": ("worker.state.manager", "StateManager"),
    "LocalStateManager": ("worker.state.local", "LocalStateManager"),
    "Checkpoint": ("worker.domain.checkpoint", "Checkpoint"),
    "ScanStatus": ("worker.domain.status", "ScanStatus"),
    "ScanParams": ("worker.domain.scan_params", "ScanParams"),
    "MarketscanError": ("worker.errors", "MarketscanError"),
    "client": ("worker.cli.client", None),
    "async_client": ("worker.cli.async_client", None),
    # `celery -A worker` looks for `worker.celery`.
    "celery": ("worker.app", "app"),
}

__all__ = sorted(name for name in _PUBLIC if name != "celery")


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'worker' has no attribute {name!r}")
    module_name, attribute = _PUBLIC[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)
