"""The one door to PostgreSQL: engines and sessions, and the only place SQL is written.

Functions here never commit: the use case that calls them owns the transaction (the one
documented exception is batched cleanup, which commits per batch to keep locks short).
"""

from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import SQLAlchemyError as DatabaseError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from worker.db.engine import (
    async_engine,
    close_engines,
    connect_args,
    driver_url,
    get_session,
    is_relaxed,
    relaxed_engine,
    relaxed_session_scope,
    relaxed_sessions,
    reset_engines,
    rowcount,
    session_scope,
    sync_engine,
    unavailable,
)

# The session types and errors other rooms may name: they never build SQL themselves.
__all__ = [
    "AsyncSession",
    "DBAPIError",
    "DataError",
    "DatabaseError",
    "IntegrityError",
    "InterfaceError",
    "OperationalError",
    "Session",
    "async_engine",
    "close_engines",
    "connect_args",
    "driver_url",
    "get_session",
    "is_relaxed",
    "relaxed_engine",
    "relaxed_session_scope",
    "relaxed_sessions",
    "reset_engines",
    "rowcount",
    "session_scope",
    "sync_engine",
    "unavailable",
]
