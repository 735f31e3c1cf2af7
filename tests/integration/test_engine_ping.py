"""The sync engine's pool on real PostgreSQL: no ping for a connection used a moment ago,
and a ping that replaces a connection that died while it sat idle."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from worker.db import driver_url, session_scope, sync_engine
from worker.db.engine import ping_when_idle


def _last_query(session: Session, backend_pid: int) -> str:
    """What the backend `backend_pid` ran last, as PostgreSQL itself saw it."""
    session.commit()  # pg_stat_activity is read as of the start of a transaction
    query = text("SELECT query FROM pg_stat_activity WHERE pid = :pid")
    return str(session.execute(query, {"pid": backend_pid}).scalar_one())


def _terminate(session: Session, backend_pid: int) -> None:
    session.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": backend_pid})
    session.commit()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


@pytest.fixture
def pinging_engine(database_url: str) -> Iterator[Engine]:
    """An engine that pings every connection idle for any time at all."""
    engine = ping_when_idle(create_engine(driver_url(database_url), pool_size=1), 0.0)
    yield engine
    engine.dispose()


def test_a_connection_used_a_moment_ago_is_checked_out_without_a_ping(
    env: dict[str, str], session: Session
) -> None:
    # Given a page's session that just returned its connection to the pool
    with session_scope() as used:
        backend_pid = int(used.execute(text("SELECT pg_backend_pid()")).scalar_one())
    assert _last_query(session, backend_pid) == "ROLLBACK"  # the pool's reset on check-in
    # When the next session checks it out, Then PostgreSQL saw nothing sent before its
    # first statement
    checked_out = sync_engine().raw_connection()
    try:
        assert checked_out.dbapi_connection.get_backend_pid() == backend_pid  # type: ignore[union-attr]
        assert _last_query(session, backend_pid) == "ROLLBACK"
    finally:
        checked_out.close()


def test_a_connection_that_died_while_idle_is_replaced_at_checkout(
    pinging_engine: Engine, session: Session
) -> None:
    # Given a pooled connection whose backend went away while it sat in the pool
    dead_pid = _backend_pid(pinging_engine)
    _terminate(session, dead_pid)
    # When it is checked out again, Then the ping found it dead and a new one serves
    assert _backend_pid(pinging_engine) != dead_pid


def test_without_the_ping_the_same_dead_connection_fails_its_first_statement(
    database_url: str, session: Session
) -> None:
    # The case the ping exists for, shown without it: the first statement fails
    from sqlalchemy.exc import OperationalError

    engine = create_engine(driver_url(database_url), pool_size=1)
    try:
        _terminate(session, _backend_pid(engine))
        with pytest.raises(OperationalError):
            _backend_pid(engine)
    finally:
        engine.dispose()
