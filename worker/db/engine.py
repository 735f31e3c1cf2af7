"""Database engines and sessions: one sync and one async engine per process, made on first use."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

from worker.errors import ConfigError, ServiceUnavailable
from worker.redaction import redacted
from worker.settings import Settings, get_settings

_SYNC_DRIVER = "postgresql+psycopg2"
_ASYNC_DRIVER = "postgresql+asyncpg"
# A pooled connection checked in less than this long ago is taken as alive, without the
# round trip of a ping: a page task checks out a connection several times a page, each a
# moment after the last. One that sat idle longer is pinged first, so a PostgreSQL restart
# is noticed at checkout; one that died within the last seconds fails its first statement,
# which invalidates the pool, and the task's retry on OperationalError takes a new one.
PING_IDLE_SECONDS = 5.0
# session.info key of the sessions of relaxed_session_scope (see relaxed_engine).
RELAXED = "relaxed"
# The bounds on waiting for PostgreSQL (Settings.database_*_timeout_seconds), and the words
# libpq and PostgreSQL use when one ran out.
CONNECT_TIMEOUT_VARIABLE = "MARKETSCAN_DATABASE_CONNECT_TIMEOUT_SECONDS"
STATEMENT_TIMEOUT_VARIABLE = "MARKETSCAN_DATABASE_STATEMENT_TIMEOUT_SECONDS"
_CONNECT_TIMED_OUT = "timeout expired"
_STATEMENT_TIMED_OUT = "statement timeout"


def driver_url(database_url: str, driver: str = _SYNC_DRIVER) -> str:
    """`database_url` rewritten for `driver`; any postgres URL form is accepted."""
    try:
        url = make_url(database_url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError; the message names the URL
        raise ConfigError(f"DATABASE_URL is not a valid URL: {redacted(str(exc))}") from None
    if not url.drivername.startswith("postgres"):
        raise ConfigError(f"DATABASE_URL must be a postgresql:// URL, got {url.drivername}://")
    return url.set(drivername=driver).render_as_string(hide_password=False)


def connect_args(
    settings: Settings, *, bounded_statements: bool = True, options: str = ""
) -> dict[str, Any]:
    """psycopg2's arguments for a new connection: how long to wait for the server to
    answer at all, and (`bounded_statements`) for any one statement, lock waits included.

    Without them a database behind a dead proxy, or a row locked by a stuck transaction,
    hangs whatever waits for it: the CLI, the bot, a page task. `options` are more
    `-c name=value` server settings for the connection.
    """
    server = [options] if options else []
    statement_ms = settings.database_statement_timeout_seconds * 1000
    if bounded_statements and statement_ms:
        server.append(f"-c statement_timeout={statement_ms}")
    args: dict[str, Any] = {"connect_timeout": settings.database_connect_timeout_seconds}
    if server:
        args["options"] = " ".join(server)
    return args


def async_connect_args(settings: Settings) -> dict[str, Any]:
    """asyncpg's arguments for the same bounds. Its reply to a statement is also waited
    for no longer than the statement's bound and a connection's: longer, the server is
    gone, not busy."""
    args: dict[str, Any] = {"timeout": settings.database_connect_timeout_seconds}
    statement_seconds = settings.database_statement_timeout_seconds
    if statement_seconds:
        args["server_settings"] = {"statement_timeout": str(statement_seconds * 1000)}
        args["command_timeout"] = statement_seconds + settings.database_connect_timeout_seconds
    return args


def lift_statement_timeout(session: Session) -> None:
    """No statement bound for the rest of `session`'s transaction: for work whose size the
    operator chooses (a cleanup batch of MARKETSCAN_CLEANUP_BATCH_SIZE rows)."""
    session.execute(text("SET LOCAL statement_timeout = 0"))


def unavailable(exc: DBAPIError, settings: Settings | None = None) -> ServiceUnavailable:
    """The one line a user sees when the database failed a request (the CLI, the client,
    the bot): which database, and which bound ran out if one did. No password."""
    settings = settings or get_settings()
    lines = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
    cause = lines[0] if lines else type(exc).__name__
    where = database_place(settings.database_url)
    if _CONNECT_TIMED_OUT in cause:
        return ServiceUnavailable(
            f"the database is unreachable: {where} did not answer within "
            f"{settings.database_connect_timeout_seconds} s ({CONNECT_TIMEOUT_VARIABLE})"
        )
    if _STATEMENT_TIMED_OUT in cause:
        return ServiceUnavailable(
            f"the database at {where} did not finish a statement within "
            f"{settings.database_statement_timeout_seconds} s ({STATEMENT_TIMEOUT_VARIABLE}):"
            " another transaction holds what it needs, or the server is overloaded"
        )
    return ServiceUnavailable(
        redacted(f"the database is unreachable or refused the request: {cause}")
    )


def database_place(database_url: str) -> str:
    """`host:port/database` of `database_url`, for messages: nothing secret in it."""
    try:
        url = make_url(database_url)
    except Exception:  # SQLAlchemy raises ArgumentError; driver_url names the problem
        return "DATABASE_URL"
    host = url.host or url.query.get("host") or "localhost"
    if not isinstance(host, str):  # several ?host= values: libpq tries each
        host = ",".join(host)
    return f"{host}:{url.port or 5432}/{url.database or ''}"


class _Engines:
    """The current process's engines; forgotten after fork so children never share sockets."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.sync: Engine | None = None
        # Made once with the engine: building a sessionmaker per session was a cost each
        # page task paid twice or more for nothing.
        self.sessions: sessionmaker[Session] | None = None
        self.relaxed: sessionmaker[Session] | None = None
        self.async_: AsyncEngine | None = None


_engines = _Engines()


def _current() -> _Engines:
    global _engines
    if _engines.pid != os.getpid():
        _engines = _Engines()
    return _engines


def sync_engine() -> Engine:
    engines = _current()
    if engines.sync is None:
        settings = get_settings()
        engines.sync = ping_when_idle(
            create_engine(
                driver_url(settings.database_url),
                pool_size=5,
                connect_args=connect_args(settings),
            ),
            PING_IDLE_SECONDS,
        )
    return engines.sync


def relaxed_engine(database_url: str, settings: Settings | None = None) -> Engine:
    """An engine for statements that are each a transaction of their own and need no WAL
    flush: a page's claim and its lease renewals (worker.db.pages). Autocommit, with
    synchronous_commit off for the connection: one round trip a statement, where a
    transaction on the main engine pays four (BEGIN, SET LOCAL, the statement, COMMIT).

    Losing such a write in a database crash is harmless: a lease simply lapses, and the
    WAL is written in order, so the page's own durable commit, which comes later, flushes
    its claim too. Nothing that must survive a crash may use this engine. Its waits are
    bounded as the main engine's are (`settings`, the process's by default).
    """
    bounds = connect_args(settings or get_settings(), options="-c synchronous_commit=off")
    return ping_when_idle(
        create_engine(
            driver_url(database_url),
            pool_size=2,
            isolation_level="AUTOCOMMIT",
            connect_args=bounds,
        ),
        PING_IDLE_SECONDS,
    )


def relaxed_sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions on a relaxed_engine, marked so the page store sends no SET LOCAL."""
    return sessionmaker(engine, expire_on_commit=False, info={RELAXED: True})


def is_relaxed(session: Session) -> bool:
    """Whether `session` runs on a relaxed_engine (each statement commits on its own)."""
    return bool(session.info.get(RELAXED))


def ping_when_idle(engine: Engine, idle_seconds: float) -> Engine:
    """Make `engine` ping a pooled connection at checkout only when it sat idle in the
    pool for longer than `idle_seconds`; a connection that fails the ping is replaced."""

    @event.listens_for(engine, "checkin")
    def checked_in(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        # A new connection has no check-in time: it was opened just now.
        checked_in_at = record.info.get("checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at <= idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool's signal to drop this connection and check out another.
            raise DisconnectionError(f"idle connection is gone: {exc}") from exc

    return engine


def async_engine() -> AsyncEngine:
    engines = _current()
    if engines.async_ is None:
        # asyncpg connections belong to the event loop that opened them; without a pool,
        # a program may run several loops (asyncio.run twice) and never reuse a dead one.
        settings = get_settings()
        engines.async_ = create_async_engine(
            driver_url(settings.database_url, _ASYNC_DRIVER),
            poolclass=NullPool,
            connect_args=async_connect_args(settings),
        )
    return engines.async_


def reset_engines() -> None:
    """Drop this process's engines without closing their parent's sockets (call after fork)."""
    engines = _current()
    if engines.sync is not None:
        engines.sync.dispose(close=False)
    engines.sync = None
    engines.sessions = None
    _drop_relaxed(engines, close=False)
    engines.async_ = None


def _drop_relaxed(engines: _Engines, *, close: bool) -> None:
    if engines.relaxed is not None:
        bind = engines.relaxed.kw["bind"]
        assert isinstance(bind, Engine)
        bind.dispose(close=close)
    engines.relaxed = None


def close_engines() -> None:
    """Close this process's engines and their pooled connections (before their server
    goes away, as the demo's embedded PostgreSQL does)."""
    engines = _current()
    if engines.sync is not None:
        engines.sync.dispose()
    engines.sync = None
    engines.sessions = None
    _drop_relaxed(engines, close=True)
    engines.async_ = None


@contextmanager
def session_scope() -> Iterator[Session]:
    """A sync session that rolls back on error and always closes."""
    engines = _current()
    if engines.sessions is None:
        engines.sessions = sessionmaker(sync_engine(), expire_on_commit=False)
    session = engines.sessions()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def relaxed_session_scope() -> Iterator[Session]:
    """A session on this process's relaxed engine (see relaxed_engine): each statement
    commits as it runs, with no WAL flush waited for."""
    engines = _current()
    if engines.relaxed is None:
        engines.relaxed = relaxed_sessions(relaxed_engine(get_settings().database_url))
    session = engines.relaxed()
    try:
        yield session
    finally:
        session.close()


@asynccontextmanager
async def get_session() -> AsyncIterator[AsyncSession]:
    """An async session for asyncio code, as in `async with get_session() as session:`."""
    factory = async_sessionmaker(async_engine(), expire_on_commit=False)
    async with factory() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise


def rowcount(result: Result[Any]) -> int:
    """Rows matched by the UPDATE or DELETE behind `result` (0 means a guard refused)."""
    return cast(CursorResult[Any], result).rowcount
