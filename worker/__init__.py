"""Marketscan's runtime, in rooms that each depend only on the rooms below them:

    testing/                        fakes and memory stubs for the tests and the bench
    cli/                            the `marketscan` command line
    bot/ | devtools/                the Telegram bot | the dev stack, demo, embedded services
    async_client.py                 the client for asyncio apps, over ...
    client.py | state_manager.py    ... the client apps use | the upstream module's names
    app.py                          the Celery app and composition root (publisher, signals)
    celery_glue/                    signal handlers, publisher, drain flag, beat's clocks
    chain/ | state/ | notify/ | metrics/ | schedules/
                                    page runner, lifecycle, recovery | the seed API |
                                    Telegram | Prometheus | watches and alerts
    db/ | markets/                  the only SQL | market sources, references, the fleet's
                                    budgets and breaker
    settings.py | broker_redis.py   configuration, parsed | the broker's Redis client
    domain/                         values and rules, no I/O
    errors.py | observe.py | redaction.py | redis_keys.py

(`|`: rooms that never import each other; pyproject.toml's import-linter contracts hold
them to it). The public API is re-exported here and imported on first use, so
`import worker` stays light for programs that never run a worker.
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
    "client": ("worker.client", None),
    "async_client": ("worker.async_client", None),
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
