"""The one door to PostgreSQL: engines and sessions, and the only place SQL is written.

Functions here never commit: the use case that calls them owns the transaction (the one
documented exception is batched cleanup, which commits per batch to keep locks short).
"""

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from worker.db.engine import (
    driver_url,
    get_session,
    reset_engines,
    rowcount,
    session_scope,
    sync_engine,
)

# SQLAlchemy names the rooms above may use (they never import sqlalchemy themselves).
__all__ = [
    "AsyncSession",
    "SQLAlchemyError",
    "Session",
    "driver_url",
    "get_session",
    "reset_engines",
    "rowcount",
    "session_scope",
    "sync_engine",
]
