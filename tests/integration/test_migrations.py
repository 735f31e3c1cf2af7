"""The Alembic history builds exactly the schema the models describe, both ways."""

from __future__ import annotations

import os
import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from models import Base
from tests.support.scans import cli
from tests.support.services import TestServices
from worker.db import driver_url
from worker.db.migrate import downgrade, upgrade


def _schema_diff(database_url: str) -> list[object]:
    engine = create_engine(driver_url(database_url))
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    return list(diff)


def _tables(database_url: str) -> set[str]:
    engine = create_engine(driver_url(database_url))
    names = set(inspect(engine).get_table_names())
    engine.dispose()
    return names


def test_upgrade_head_matches_models(database_url: str) -> None:
    # Given a database migrated to head (the template), Then autogenerate finds nothing to do.
    assert _schema_diff(database_url) == []


def test_downgrade_then_upgrade_round_trips(database_url: str) -> None:
    # When the schema is downgraded to base, Then the tables are gone.
    downgrade(database_url, "base")
    assert {"scan_checkpoints", "scan_opportunities"}.isdisjoint(_tables(database_url))
    # When it is upgraded again, Then it matches the models exactly.
    upgrade(database_url)
    assert _schema_diff(database_url) == []


def test_status_check_constraint_refuses_unknown_status(database_url: str) -> None:
    import uuid

    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    engine = create_engine(driver_url(database_url))
    with pytest.raises(IntegrityError, match="ck_scan_checkpoints_status"), engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO scan_checkpoints (scan_id, user_id, operation_type, status)"
                " VALUES (:scan_id, 1, 'market_scan', 'sleeping')"
            ),
            {"scan_id": uuid.uuid4()},
        )
    engine.dispose()


def test_marketscan_migrate_builds_the_schema_on_an_empty_database(
    services: TestServices,
) -> None:
    name = f"empty_{uuid.uuid4().hex[:12]}"
    services._admin(f'CREATE DATABASE "{name}"')
    try:
        url = services.url_of(name)
        done = cli(["migrate"], {**os.environ, "DATABASE_URL": url})
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "database schema is up to date"
        assert _schema_diff(url) == []
    finally:
        services.drop_database(name)
