"""Revision 0008 stores opportunities' item ids as compact bytea without losing or changing
one, and the downgrade gives the 0007 text column back as it was."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from models import ScanOpportunity
from tests.support.services import TestServices
from worker.db import driver_url
from worker.db.migrate import downgrade, upgrade
from worker.db.scan_queries import top_opportunities

DMARKET_ID = str(uuid.UUID("6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f"))
# Every kind of id a market may send; profits tie in pairs, so ties are ordered by the id.
# (A UUID's bytes sort apart from its text: "a" ties with DMARKET_ID and must follow it.)
IDS = ["a", DMARKET_ID, DMARKET_ID.upper(), str(uuid.UUID(int=7)), "sim-42-00000013",
       "sim-42-000000013", "ключ-1234567", ""]  # fmt: skip
COLUMNS = ("id", "scan_id", "scan_day", "item_id", "title", "price_cents",
           "reference_price_cents", "profit_hundredths", "page_seq", "order_count",
           "reference_kind", "reference_fetched_at", "found_at")  # fmt: skip


@pytest.fixture
def at_0007(services: TestServices) -> Iterator[str]:
    name = f"m0008_{uuid.uuid4().hex[:12]}"
    services._admin(f'CREATE DATABASE "{name}"')
    try:
        url = services.url_of(name)
        upgrade(url, "0007")
        yield url
    finally:
        services.drop_database(name)


def _store(engine: Engine) -> uuid.UUID:
    """A finished scan of the 0007 schema with one opportunity for each id."""
    scan_id = uuid.uuid4()
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO scan_checkpoints (scan_id, user_id, operation_type, status, params,"
                " runner) VALUES (:scan_id, 1, 'market_scan', 'completed',"
                " CAST('{\"fee\": 0.07}' AS jsonb), 'chain')"
            ),
            {"scan_id": scan_id},
        )
        for number, item_id in enumerate(IDS):
            connection.execute(
                text(
                    "INSERT INTO scan_opportunities (scan_id, scan_day, item_id, title,"
                    " price_cents, reference_price_cents, profit_hundredths, page_seq,"
                    " order_count, reference_kind, reference_fetched_at) SELECT :scan_id,"
                    " (created_at AT TIME ZONE 'UTC')::date, :item_id, :title, 1000, 1500,"
                    " :profit, :page_seq, :orders, 3, now() FROM scan_checkpoints"
                    " WHERE scan_id = :scan_id"
                ),
                {"scan_id": scan_id, "item_id": item_id, "title": f"Item {number}",
                 "profit": 4000 - 100 * (number // 2), "page_seq": number // 3,
                 "orders": number or None},
            )  # fmt: skip
    return scan_id


def _rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(f"SELECT {', '.join(COLUMNS)} FROM scan_opportunities ORDER BY id")
        ).mappings()
        return [dict(row) for row in rows]


def test_upgrade_keeps_every_id_and_value_and_downgrade_gives_them_back(at_0007: str) -> None:
    engine = create_engine(driver_url(at_0007))
    # Given a scan of the 0007 schema with ids of every kind, and the order results showed
    scan_id = _store(engine)
    before = _rows(engine)
    with engine.connect() as connection:
        order_before = connection.scalars(
            text("SELECT item_id FROM scan_opportunities ORDER BY profit_hundredths DESC, item_id")
        ).all()
    # When the database is upgraded to head
    upgrade(at_0007)
    # Then every row reads back with the very same values, and results show the same
    with Session(engine) as session:
        stored = session.scalars(select(ScanOpportunity).order_by(ScanOpportunity.id)).all()
        assert [{c: getattr(row, c) for c in COLUMNS} for row in stored] == before
        shown = top_opportunities(session, scan_id, top=100)
    assert [find["item_id"] for find in shown] == order_before
    by_id = {row["item_id"]: row for row in before}
    assert all(
        (find["price_cents"], find["profit_percent"], find["order_count"])
        == (by_id[find["item_id"]]["price_cents"], by_id[find["item_id"]]["profit_hundredths"]
            / 100, by_id[find["item_id"]]["order_count"])
        for find in shown
    )  # fmt: skip
    # And only the canonical UUIDs take 16 bytes
    with engine.connect() as connection:
        sizes = dict(
            connection.execute(
                text("SELECT id, octet_length(item_id) FROM scan_opportunities")
            ).all()
        )
    assert {row["item_id"] for row in before if sizes[row["id"]] == 16} == {
        DMARKET_ID, str(uuid.UUID(int=7))
    }  # fmt: skip
    # When it is downgraded again, Then the 0007 rows are back as they were
    downgrade(at_0007, "0007")
    assert _rows(engine) == before
    engine.dispose()


def test_a_page_stores_each_item_once_whatever_its_id(session: Session) -> None:
    from datetime import date

    from worker.db import page_sql

    scan_id = uuid.uuid4()
    # (how each was judged, fee, exits, sales and lock, left out: null, as on rows before)
    arrays = {
        **{name: [None] * len(IDS) for name, _ in page_sql.OPPORTUNITY_ARRAYS},
        "item_id": IDS, "title": [f"T{n}" for n in range(len(IDS))],
        "price_cents": [100] * len(IDS), "reference_price_cents": [200] * len(IDS),
        "profit_hundredths": [8600] * len(IDS), "reference_kind": [3] * len(IDS),
        "order_count": [None] * len(IDS), "reference_fetched_at": [None] * len(IDS),
    }  # fmt: skip
    for page_seq in (0, 1):  # the same listings again, as a redelivered or moved page
        session.execute(
            page_sql.INSERT_FOUND,
            {"scan_id": scan_id, "scan_day": date(2026, 12, 3), "page_seq": page_seq, **arrays},
        )
    stored = session.execute(select(ScanOpportunity.item_id, ScanOpportunity.page_seq)).all()
    assert sorted(stored) == sorted((item_id, 0) for item_id in IDS)
