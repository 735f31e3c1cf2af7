"""Moving an upstream scan_checkpoints table to ours (migrations/upstream/*.sql), tested on
tables shaped as the upstream's migration and as its model made them, on real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from tests.integration.test_migrations import _schema_diff
from tests.support.services import plain_url
from worker.db import driver_url
from worker.db.migrate import MIGRATIONS_DIR, downgrade, upgrade
from worker.domain.status import ScanStatus
from worker.errors import InvalidTransition
from worker.state_manager import StateManager

STEPS = MIGRATIONS_DIR / "upstream"
# The upstream's migration, as the seed guide prints it: `metadata JSONB`, naive times.
UPSTREAM_MIGRATION = """
CREATE TABLE scan_checkpoints (
    id SERIAL PRIMARY KEY,
    scan_id UUID UNIQUE NOT NULL,
    user_id INTEGER NOT NULL,
    operation_type VARCHAR(50) NOT NULL,
    cursor TEXT,
    processed_items INTEGER DEFAULT 0,
    total_items INTEGER,
    timestamp TIMESTAMP NOT NULL,
    metadata JSONB DEFAULT '{}',
    status VARCHAR(20) DEFAULT 'in_progress',
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX idx_scan_checkpoints_scan_id ON scan_checkpoints(scan_id);
CREATE INDEX idx_scan_checkpoints_user_id ON scan_checkpoints(user_id);
"""
# The upstream's model through create_all: `extra_data JSON`, and index names that are ours.
UPSTREAM_MODEL = """
CREATE TABLE scan_checkpoints (
    id SERIAL NOT NULL PRIMARY KEY,
    scan_id UUID NOT NULL,
    user_id INTEGER NOT NULL,
    operation_type VARCHAR(50) NOT NULL,
    cursor TEXT,
    processed_items INTEGER,
    total_items INTEGER,
    timestamp TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    extra_data JSON,
    status VARCHAR(20),
    created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
    updated_at TIMESTAMP WITHOUT TIME ZONE NOT NULL
);
CREATE UNIQUE INDEX ix_scan_checkpoints_scan_id ON scan_checkpoints (scan_id);
CREATE INDEX ix_scan_checkpoints_user_id ON scan_checkpoints (user_id);
"""
SHAPES = {"migration": (UPSTREAM_MIGRATION, "metadata"), "model": (UPSTREAM_MODEL, "extra_data")}


def run_sql(database_url: str, sql: str) -> list[str]:
    """Run `sql` as psql -f would (the scripts hold their own BEGIN/COMMIT); its notices."""
    connection = psycopg2.connect(plain_url(database_url))
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
        return [notice.strip() for notice in connection.notices]
    finally:
        connection.close()


def step(database_url: str, name: str) -> list[str]:
    return run_sql(database_url, (STEPS / name).read_text())


@pytest.fixture
def bare_database(database_url: str) -> Iterator[str]:
    """A database holding no marketscan table, as a bot's database before the move."""
    downgrade(database_url, "base")
    run_sql(database_url, "DROP TABLE alembic_version")
    yield database_url


def insert_upstream_rows(database_url: str, meta_column: str) -> dict[str, uuid.UUID]:
    scans = {name: uuid.uuid4() for name in ("live", "failed", "done", "stopped", "bare")}
    rows = [
        (scans["live"], "'page-7'", 700, 1000, "in_progress", """'{"game": "csgo"}'"""),
        (scans["failed"], "'page-2'", 200, None, "failed", """'{"error": "market 403"}'"""),
        (scans["done"], "NULL", 1000, 1000, "completed", "'{}'"),
        (scans["stopped"], "'page-3'", 300, None, "interrupted", """'["odd"]'"""),
        (scans["bare"], "NULL", None, None, None, "NULL"),
    ]
    values = ", ".join(
        f"('{scan}', 5000, 'market_scan', {cursor}, {'NULL' if done is None else done}, "
        f"{'NULL' if total is None else total}, TIMESTAMP '2026-11-01 12:00:00', {meta}, "
        f"{'NULL' if status is None else repr(status)}, "
        "TIMESTAMP '2026-11-01 10:00:00', TIMESTAMP '2026-11-01 12:00:00')"
        for scan, cursor, done, total, status, meta in rows
    )
    run_sql(
        database_url,
        "INSERT INTO scan_checkpoints (scan_id, user_id, operation_type, cursor, "
        f"processed_items, total_items, timestamp, {meta_column}, status, created_at, "
        f"updated_at) VALUES {values}",
    )
    return scans


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_an_upstream_table_moves_into_ours_row_for_row(bare_database: str, shape: str) -> None:
    # Given a database holding the upstream's table, with rows of every kind it wrote
    ddl, meta_column = SHAPES[shape]
    run_sql(bare_database, ddl)
    scans = insert_upstream_rows(bare_database, meta_column)
    # When it is set aside, marketscan migrates, and the rows are copied
    step(bare_database, "1_set_aside.sql")
    upgrade(bare_database)
    notices = step(bare_database, "3_copy.sql")
    # Then every row is ours, converted, and our StateManager carries each scan on
    assert notices[-1].endswith("copied 5 upstream checkpoints into scan_checkpoints")
    manager = StateManager(Session(create_engine(driver_url(bare_database))))
    live = manager.load_checkpoint(scans["live"])
    assert live is not None
    assert (live.user_id, live.cursor, live.processed_items, live.total_items) == (
        5000, "page-7", 700, 1000,
    )  # fmt: skip
    assert (live.status, live.extra_data) == (ScanStatus.IN_PROGRESS, {"game": "csgo"})
    assert live.timestamp.isoformat() == "2026-11-01T12:00:00+00:00"  # naive UTC, now aware
    assert live.created_at is not None and live.created_at.hour == 10
    failed = manager.load_checkpoint(scans["failed"])
    assert failed is not None and failed.status == ScanStatus.FAILED
    assert failed.error_message == "market 403"
    stopped = manager.load_checkpoint(scans["stopped"])
    assert stopped is not None and stopped.status == ScanStatus.PAUSED
    assert stopped.extra_data == {"upstream_value": ["odd"]}
    bare = manager.load_checkpoint(scans["bare"])
    assert bare is not None
    assert (bare.status, bare.processed_items, bare.extra_data) == (ScanStatus.IN_PROGRESS, 0, {})
    saved = manager.save_checkpoint(scans["live"], "page-8", 800, extra_data={"page": 8})
    assert saved.extra_data == {"game": "csgo", "page": 8}
    with pytest.raises(InvalidTransition):
        manager.save_checkpoint(scans["done"], None, 1000)
    assert manager.cleanup_old_checkpoints(days=7) == 2  # done and failed, a month old
    # And once the upstream table is dropped, the schema is exactly marketscan's
    manager.session.close()
    run_sql(bare_database, "DROP TABLE upstream_scan_checkpoints")
    assert _schema_diff(bare_database) == []


def test_an_unknown_upstream_status_stops_the_copy_naming_it(bare_database: str) -> None:
    run_sql(bare_database, UPSTREAM_MIGRATION)
    insert_upstream_rows(bare_database, "metadata")
    run_sql(bare_database, "UPDATE scan_checkpoints SET status = 'exploded' WHERE cursor IS NULL")
    step(bare_database, "1_set_aside.sql")
    upgrade(bare_database)
    with pytest.raises(psycopg2.Error, match="statuses marketscan does not know: exploded"):
        step(bare_database, "3_copy.sql")
    assert run_count(bare_database) == 0


def test_copying_twice_is_refused_and_copies_nothing_more(bare_database: str) -> None:
    run_sql(bare_database, UPSTREAM_MODEL)
    insert_upstream_rows(bare_database, "extra_data")
    step(bare_database, "1_set_aside.sql")
    upgrade(bare_database)
    step(bare_database, "3_copy.sql")
    with pytest.raises(psycopg2.Error, match="5 upstream scan_ids are in scan_checkpoints"):
        step(bare_database, "3_copy.sql")
    assert run_count(bare_database) == 5


def run_count(database_url: str) -> int:
    connection = psycopg2.connect(plain_url(database_url))
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM scan_checkpoints")
            row = cursor.fetchone()
            assert row is not None
            return int(row[0])
    finally:
        connection.close()


def test_the_steps_are_where_the_python_api_page_says() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "python-api.md").read_text()
    for name in ("1_set_aside.sql", "3_copy.sql"):
        assert (STEPS / name).is_file()
        assert f"psql -v ON_ERROR_STOP=1 -f migrations/upstream/{name}" in page
