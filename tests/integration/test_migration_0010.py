"""Revision 0010 makes PostgreSQL refuse a second checkpoint of a scan id across days, on a
populated database of the 0009 schema, without changing a row, and takes the refusal away
again on the way down; it refuses to upgrade, changing nothing, a database that stores an
id twice already (which 0009 let any writer but create_checkpoint do)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.support.services import TestServices
from worker.db import driver_url
from worker.db import opportunity_days as days_sql
from worker.db.migrate import downgrade, upgrade


@pytest.fixture
def at_0009(services: TestServices) -> Iterator[str]:
    name = f"m0010_{uuid.uuid4().hex[:12]}"
    services._admin(f'CREATE DATABASE "{name}"')
    try:
        url = services.url_of(name)
        upgrade(url, "0009")
        yield url
    finally:
        services.drop_database(name)


def _store(engine: Engine, scan_id: uuid.UUID, day: date, status: str = "completed") -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO scan_checkpoints (scan_id, user_id, operation_type, status,"
                " processed_items, metadata, created_at, updated_at) VALUES (:scan_id,"
                " 5000000000, 'market_scan', :status, 42, CAST('{\"chat\": 7}' AS jsonb),"
                " :at, :at)"
            ),
            {"scan_id": scan_id, "status": status, "at": f"{day.isoformat()} 12:00:00+00"},
        )


def _rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT to_jsonb(c) || jsonb_build_object('table', tableoid::regclass::text)"
                " AS row FROM scan_checkpoints c ORDER BY id"
            )
        )
        return [row.row for row in rows]


def _populate(engine: Engine) -> dict[str, uuid.UUID]:
    """Scans of today, of ten days ago (a day of its own) and of a year ago (`undated`)."""
    today = datetime.now(UTC).date()
    with Session(engine) as session:
        days_sql.make_day(session, today - timedelta(days=10))
        session.commit()
    scans = {"today": uuid.uuid4(), "old": uuid.uuid4(), "undated": uuid.uuid4()}
    _store(engine, scans["today"], today, "in_progress")
    _store(engine, scans["old"], today - timedelta(days=10), "failed")
    _store(engine, scans["undated"], today - timedelta(days=365))
    return scans


def _refused(engine: Engine, scan_id: uuid.UUID, day: date) -> bool:
    try:
        _store(engine, scan_id, day)
    except IntegrityError as exc:
        assert "is stored already" in str(exc)
        return True
    return False


def test_upgrade_refuses_a_second_row_of_an_id_and_downgrade_takes_that_away(
    at_0009: str,
) -> None:
    engine = create_engine(driver_url(at_0009))
    # Given a populated 0009 database
    scans = _populate(engine)
    before = _rows(engine)
    today = datetime.now(UTC).date()
    # When it is upgraded to 0010, Then every row is there as it was
    upgrade(at_0009, "0010")
    assert _rows(engine) == before
    # And each stored id is refused on another day: a day's partition, `undated`, and a
    # day made after the upgrade
    later = today - timedelta(days=20)
    with Session(engine) as session:
        days_sql.make_day(session, later)
        session.commit()
    assert _refused(engine, scans["today"], today - timedelta(days=10))
    assert _refused(engine, scans["old"], today - timedelta(days=365))
    assert _refused(engine, scans["undated"], later)
    assert _rows(engine) == before
    # When it is downgraded to 0009, Then the rows are as they were, and the refusal is gone
    # with its table and functions
    downgrade(at_0009, "0009")
    assert _rows(engine) == before
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == "0009"
        functions = connection.scalar(
            text(
                "SELECT count(*) FROM pg_proc WHERE proname IN"
                " ('scan_checkpoints_one_row_per_scan_id',"
                " 'scan_checkpoints_scan_id_never_changes')"
            )
        )
        assert functions == 0
        assert connection.scalar(text("SELECT to_regclass('scan_id_stripes')")) is None
    assert not _refused(engine, scans["old"], later)
    engine.dispose()


def test_upgrade_refuses_a_database_that_stores_an_id_twice_and_changes_nothing(
    at_0009: str,
) -> None:
    engine = create_engine(driver_url(at_0009))
    # Given a 0009 database where plain SQL stored one id on two days
    scans = _populate(engine)
    _store(engine, scans["old"], datetime.now(UTC).date())
    before = _rows(engine)
    # When it is upgraded, Then the upgrade names the id and changes nothing
    with pytest.raises(RuntimeError, match=f"1 scan ids are stored more than once.*{scans['old']}"):
        upgrade(at_0009, "0010")
    assert _rows(engine) == before
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == "0009"
        assert connection.scalar(text("SELECT to_regclass('scan_id_stripes')")) is None
    engine.dispose()
