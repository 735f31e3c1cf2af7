"""The one door to PostgreSQL: engines and sessions, and the only place SQL is written.

Functions here never commit: the use case that calls them owns the transaction (the one
documented exception is batched cleanup, which commits per batch to keep locks short).
"""

from worker.db.engine import (
    driver_url,
    get_session,
    reset_engines,
    rowcount,
    session_scope,
    sync_engine,
)

__all__ = [
    "driver_url",
    "get_session",
    "reset_engines",
    "rowcount",
    "session_scope",
    "sync_engine",
]
