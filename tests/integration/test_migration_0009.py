"""Revision 0009 takes a populated database of the 0008 schema to day-partitioned
checkpoints without losing or changing a row, and back; a scan whose finds went to the
opportunities' `undated` gets no checkpoint day of its own (its day is not dropped whole)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests.support.services import TestServices
from worker.db import checkpoints as store
from worker.db import driver_url
from worker.db.migrate import downgrade, upgrade
from worker.errors import DuplicateScan


@pytest.fixture
def at_0008(services: TestServices) -> Iterator[str]:
    name = f"m0009_{uuid.uuid4().hex[:12]}"
    services._admin(f'CREATE DATABASE "{name}"')
    try:
        url = services.url_of(name)
        upgrade(url, "0008")
        yield url
    finally:
        services.drop_database(name)


def _store(engine: Engine, created_days_ago: int, status: str, finds: int) -> uuid.UUID:
    """A scan of the 0008 schema with every kind of column filled, and its finds."""
    scan_id = uuid.uuid4()
    created = datetime.now(UTC) - timedelta(days=created_days_ago)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO scan_checkpoints (scan_id, user_id, operation_type, cursor,"
                " processed_items, total_items, metadata, status, params, page_seq, page_offset,"
                " lease_token, lease_owner, page_judged_ids, skipped_items, runner, recoveries,"
                " note, created_at, updated_at) VALUES (:scan_id, 5000000000, 'market_scan',"
                " 'c-42', 420, 1000, CAST(:meta AS jsonb), :status, CAST(:params AS jsonb), 4, 2,"
                " :token, 'w1@host', ARRAY['a','b'], 3, 'chain', 1, 'ended early', :created,"
                " :created)"
            ),
            {"scan_id": scan_id, "meta": '{"chat": 7}', "status": status,
             "params": '{"game": "csgo", "fee": 0.07}', "token": uuid.uuid4(),
             "created": created},
        )  # fmt: skip
        for number in range(finds):
            connection.execute(
                text(
                    "INSERT INTO scan_opportunities (scan_id, scan_day, item_id, title,"
                    " price_cents, reference_price_cents, profit_hundredths, page_seq)"
                    " VALUES (:scan_id, :day, :item, 'AK', 100, 200, 8600, 0)"
                ),
                {"scan_id": scan_id, "day": created.date(), "item": f"item-{number}"},
            )
    return scan_id


def _rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT to_jsonb(c) AS row FROM scan_checkpoints c ORDER BY id")
        )
        return [row.row for row in rows]


def _placed(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT scan_id::text, tableoid::regclass::text FROM scan_checkpoints")
        )
        return {row[0]: row[1] for row in rows}


def test_upgrade_keeps_every_checkpoint_and_value_and_downgrade_gives_them_back(
    at_0008: str,
) -> None:
    engine = create_engine(driver_url(at_0008))
    # Given scans of today, of two days ago (a day 0007 made ahead of none: its finds are
    # in the opportunities' undated) and of ten days ago with no finds
    today_scan = _store(engine, 0, "in_progress", 3)
    undated_scan = _store(engine, 2, "completed", 2)
    old_scan = _store(engine, 10, "failed", 0)
    before = _rows(engine)
    # When the database is upgraded to head
    upgrade(at_0008)
    # Then every row is there with every value as it was, ids included (and the columns
    # later revisions add, empty)
    after = _rows(engine)
    assert [{**row, "next_poll_at": None, "illiquid_items": 0} for row in before] == after
    # And each lies in its own day, but the day whose finds are undated has none
    today = datetime.now(UTC).date()
    old_day = today - timedelta(days=10)
    placed = _placed(engine)
    assert placed[str(today_scan)] == f"scan_checkpoint_days.d{today:%Y%m%d}"
    assert placed[str(old_scan)] == f"scan_checkpoint_days.d{old_day:%Y%m%d}"
    assert placed[str(undated_scan)] == "scan_checkpoint_days.undated"
    # And a new scan gets an id above every old one, and an old id cannot start again
    with Session(engine) as session:
        new_scan = uuid.uuid4()
        store.create_checkpoint(session, new_scan, 1, "market_scan")
        session.commit()
        new_id = session.scalar(
            text("SELECT id FROM scan_checkpoints WHERE scan_id = :s"), {"s": new_scan}
        )
        assert new_id == max(row["id"] for row in before) + 1
        with pytest.raises(DuplicateScan):
            store.create_checkpoint(session, old_scan, 1, "market_scan")
        session.rollback()
        session.execute(text("DELETE FROM scan_checkpoints WHERE id = :id"), {"id": new_id})
        session.commit()
    # When it is downgraded again, Then the 0008 table holds the same rows
    downgrade(at_0008, "0008")
    assert _rows(engine) == before
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == "0008"
        kind = connection.scalar(
            text("SELECT relkind FROM pg_class WHERE relname = 'scan_checkpoints'")
        )
        assert kind == "r"
    engine.dispose()
