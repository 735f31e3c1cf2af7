"""The bench's own reads of PostgreSQL: plain psycopg2 connections in autocommit mode, so a
figure's reads of the rows it measures stay outside SQLAlchemy and the code under test."""

from __future__ import annotations

from typing import Any, TypeAlias

import psycopg2  # type: ignore[import-untyped]  # no stubs installed
from psycopg2.extensions import connection as _PgConnection  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

# How often the bench reads again a row (or a log) it waits on.
POLL_SECONDS = 0.005
Connection: TypeAlias = _PgConnection


def plain_url(url: str) -> str:
    """`url` in the form psycopg2 and libpq accept."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def connect(database_url: str) -> Connection:
    """A psycopg2 connection in autocommit mode, for the bench's own reads."""
    connection = psycopg2.connect(plain_url(database_url))
    connection.autocommit = True
    return connection


def scalar(connection: Connection, sql: str, args: tuple[Any, ...] = ()) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        row = cursor.fetchone()
    return None if row is None else row[0]
