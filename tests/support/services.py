"""The PostgreSQL and Redis servers of a test session: given by URL, or embedded."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from sqlalchemy.engine import make_url

from worker.db.migrate import upgrade
from worker.devtools.embedded import EmbeddedPostgres, EmbeddedRedis


def plain_url(url: str) -> str:
    """`url` in the form psycopg2 and libpq accept."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class TestServices:
    __test__ = False  # not a test class, despite the name

    database_url: str
    redis_url: str

    @classmethod
    @contextlib.contextmanager
    def start(
        cls, directory: Path, database_url: str | None, redis_url: str | None
    ) -> Iterator[TestServices]:
        postgres = EmbeddedPostgres(directory / "postgres") if database_url is None else None
        redis = EmbeddedRedis(directory / "redis") if redis_url is None else None
        try:
            if postgres is not None:
                postgres.start()
                database_url = postgres.url
            if redis is not None:
                redis.start()
                redis_url = redis.url
            assert database_url is not None and redis_url is not None
            yield cls(database_url, redis_url)
        finally:
            if redis is not None:
                redis.stop()
            if postgres is not None:
                postgres.stop()

    def url_of(self, database: str) -> str:
        return make_url(self.database_url).set(database=database).render_as_string(False)

    def _admin(self, statement: str) -> None:
        connection = psycopg2.connect(plain_url(self.database_url))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def create_template(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{name}"')
        upgrade(self.url_of(name))

    def clone_template(self, template: str, name: str) -> None:
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
