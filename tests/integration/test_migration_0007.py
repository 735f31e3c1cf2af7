"""Revision 0007 takes a database of the 0006 schema to compact, day-partitioned
opportunities without losing or changing a row, and back."""

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
from worker.db import driver_url
from worker.db.migrate import downgrade, upgrade
from worker.db.scan_queries import top_opportunities

FEE = 0.07
OLD_COLUMNS = ("id", "item_id", "title", "price_cents", "reference_price_cents", "fee_cents",
               "profit_cents", "profit_percent", "page_seq", "reference_kind")  # fmt: skip


@pytest.fixture
def at_0006(services: TestServices) -> Iterator[str]:
    name = f"m0007_{uuid.uuid4().hex[:12]}"
    services._admin(f'CREATE DATABASE "{name}"')
    try:
        url = services.url_of(name)
        upgrade(url, "0006")
        yield url
    finally:
        services.drop_database(name)


def _old_row(scan_id: uuid.UUID, number: int, price: int, reference: int) -> dict[str, Any]:
    fee = round(reference * FEE)
    profit = reference - fee - price
    return {
        "scan_id": scan_id, "item_id": f"item-{number}", "title": f"AK-47 | Redline {number}",
        "price_cents": price, "reference_price_cents": reference, "fee_cents": fee,
        "profit_cents": profit, "profit_percent": round(100 * profit / price, 2),
        "page_seq": number // 3, "reference_kind": 3 if number % 2 else None,
    }  # fmt: skip


def _store_old(engine: Engine, created_days_ago: int, rows: int) -> uuid.UUID:
    """A finished scan of the 0006 schema and its opportunities, as page commits wrote them."""
    scan_id = uuid.uuid4()
    created = datetime.now(UTC) - timedelta(days=created_days_ago)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO scan_checkpoints (scan_id, user_id, operation_type, status, params,"
                " runner, created_at, updated_at) VALUES (:scan_id, 1, 'market_scan',"
                " 'completed', CAST(:params AS jsonb), 'chain', :created, :created)"
            ),
            {"scan_id": scan_id, "params": '{"game": "csgo", "fee": 0.07}', "created": created},
        )
        for number in range(rows):
            # Prices that round the fee both ways, and a half-cent one (1250 * 0.07 = 87.5).
            price, reference = 1000 + 37 * number, 1250 + 113 * number
            connection.execute(
                text(
                    "INSERT INTO scan_opportunities (" + ", ".join(OLD_COLUMNS[1:]) + ", scan_id)"
                    " VALUES (" + ", ".join(f":{c}" for c in OLD_COLUMNS[1:]) + ", :scan_id)"
                ),
                _old_row(scan_id, number, price, reference),
            )
    return scan_id


def _old_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT scan_id, " + ", ".join(OLD_COLUMNS) + " FROM scan_opportunities ORDER BY id"
            )
        ).mappings()
        return [dict(row) for row in rows]


def test_upgrade_keeps_every_row_and_value_and_downgrade_gives_them_back(at_0006: str) -> None:
    engine = create_engine(driver_url(at_0006))
    # Given two finished scans of the 0006 schema, one created ten days ago
    old_scan, new_scan = _store_old(engine, 10, 7), _store_old(engine, 0, 5)
    before = _old_rows(engine)
    # When the database is upgraded to head
    upgrade(at_0006)
    # Then results show exactly the values the old columns held
    with Session(engine) as session:
        for scan_id in (old_scan, new_scan):
            shown = top_opportunities(session, scan_id, top=100)
            stored = [row for row in before if row["scan_id"] == scan_id]
            assert len(shown) == len(stored)
            assert sorted((r["item_id"], r["price_cents"], r["reference_price_cents"],
                           r["fee_cents"], r["profit_cents"], r["profit_percent"], r["page_seq"])
                          for r in shown) == sorted(
                (r["item_id"], r["price_cents"], r["reference_price_cents"], r["fee_cents"],
                 r["profit_cents"], float(r["profit_percent"]), r["page_seq"])
                for r in stored
            )  # fmt: skip
    with engine.connect() as connection:
        # And each row kept its id, in its scan's own day
        placed = connection.execute(
            text("SELECT id, scan_id, tableoid::regclass::text FROM scan_opportunities")
        ).all()
        assert sorted(row.id for row in placed) == [row["id"] for row in before]
        old_day = (datetime.now(UTC) - timedelta(days=10)).date()
        assert {row[2] for row in placed if row.scan_id == old_scan} == {
            f"scan_opportunity_days.d{old_day:%Y%m%d}"
        }
        # And new rows get ids above every old one (alert cursors compare them)
        next_id = connection.scalar(text("SELECT nextval('scan_opportunity_ids')"))
        assert next_id == max(row["id"] for row in before) + 1
    # When it is downgraded again, Then the 0006 rows are back as they were
    downgrade(at_0006, "0006")
    after = _old_rows(engine)
    assert [{**row, "profit_percent": float(row["profit_percent"])} for row in after] == [
        {**row, "profit_percent": float(row["profit_percent"])} for row in before
    ]
    engine.dispose()


def test_upgrade_refuses_rows_whose_stored_profit_the_fee_does_not_give(at_0006: str) -> None:
    engine = create_engine(driver_url(at_0006))
    scan_id = _store_old(engine, 2, 3)
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE scan_opportunities SET profit_cents = profit_cents + 1 WHERE id = 2")
        )
    before = _old_rows(engine)
    with pytest.raises(RuntimeError, match="1 scan_opportunities rows hold a fee or profit"):
        upgrade(at_0006)
    # Nothing changed: still the 0006 table, every row as it was
    assert _old_rows(engine) == before
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT version_num FROM alembic_version")) == "0006"
    assert scan_id
    engine.dispose()
