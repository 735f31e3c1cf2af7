"""Test services: real PostgreSQL and Redis, from the environment or embedded.

Each test that asks for `database_url` gets a fresh database cloned from a template that
was migrated once per session (CREATE DATABASE ... TEMPLATE), so tests never see each
other's rows, and worker subprocesses can connect to the same database by URL.

Under pytest-xdist (`make test` runs the acceptance suite with `-n 2`) each xdist worker is
a session of its own: embedded servers in its own temp dir on free ports, and a template of
its own name when the database is given. A given Redis is refused there, because tests
empty it whole (FLUSHALL) under the other worker's feet.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy.orm import Session

from tests.fakes.telegram_server import FakeTelegram
from tests.support.services import TestServices

# "gw0", "gw1", ... in a pytest-xdist worker; unset in a plain run.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
TEMPLATE_DATABASE = "_".join(filter(None, ("marketscan_template", XDIST_WORKER)))


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("dist", "no") != "no" and "MARKETSCAN_TEST_REDIS_URL" in os.environ:
        raise pytest.UsageError(
            "MARKETSCAN_TEST_REDIS_URL would be shared by every xdist worker, and tests flush "
            "it: unset it (each worker then embeds a Redis of its own) or run without -n"
        )


@pytest.fixture(scope="session")
def services() -> Iterator[TestServices]:
    database_url = os.environ.get("MARKETSCAN_TEST_DATABASE_URL")
    redis_url = os.environ.get("MARKETSCAN_TEST_REDIS_URL")
    with (
        tempfile.TemporaryDirectory(prefix=f"marketscan-test-{XDIST_WORKER}") as tmp,
        TestServices.start(Path(tmp), database_url, redis_url) as started,
    ):
        started.create_template(TEMPLATE_DATABASE)
        yield started
        if database_url is not None:
            started.drop_database(TEMPLATE_DATABASE)


@pytest.fixture
def database_url(services: TestServices) -> Iterator[str]:
    """A fresh, migrated database for this test alone."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    services.clone_template(TEMPLATE_DATABASE, name)
    try:
        yield services.url_of(name)
    finally:
        services.drop_database(name)


@pytest.fixture
def redis_url(services: TestServices) -> Iterator[str]:
    """The test Redis, emptied before and after the test."""
    client = redis.Redis.from_url(services.redis_url)
    client.flushall()
    yield services.redis_url
    client.flushall()
    client.close()


@pytest.fixture
def env(
    database_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """The process environment pointed at this test's database and Redis, settings re-read."""
    from worker.db import reset_engines
    from worker.settings import get_settings

    # Development on: the suites inject faults (crash_item, latencies) on purpose, in this
    # process and in every one a test starts; tests of production's refusal turn it off.
    values = {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": redis_url,
        "MARKETSCAN_DEV_MODE": "1",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    reset_engines()
    yield dict(os.environ)
    reset_engines()
    get_settings.cache_clear()


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    from sqlalchemy import create_engine

    from worker.db import driver_url

    engine = create_engine(driver_url(database_url))
    with Session(engine, expire_on_commit=False) as opened:
        yield opened
    engine.dispose()


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    """The loopback Bot API, for the notifier, the alerts and the bot."""
    with FakeTelegram() as fake:
        yield fake
