"""Marketscan's runtime: settings, storage, markets, the page runner, signals and the CLI."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # `celery -A worker` looks for `worker.celery`; importing Celery lazily keeps
    # `import worker.state.manager` light for programs that never run a worker.
    if name == "celery":
        from worker.app import app

        return app
    raise AttributeError(f"module 'worker' has no attribute {name!r}")
