"""Revision 0011 fills the row tallies from a populated database of the 0010 schema, keeps
them equal to the rows through later writes (its triggers), and goes back to 0010 leaving
the rows as they were and nothing of its own behind."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.support.services import TestServices
from worker.db import driver_url
from worker.db.migrate import downgrade, upgrade

BEFORE = "0010"
STATUSES = ("in_progress", "paused", "completed", "failed", "cancelled")
# What the tallies must hold, read from the rows themselves.
TRUTH = (
    "SELECT "
    + ", ".join(f"count(*) FILTER (WHERE status = '{s}') AS scans_{s}" for s in STATUSES)
    + ", coalesce(sum(page_seq) FILTER (WHERE runner = 'chain'), 0) AS chain_pages"
    ", coalesce(sum(processed_items) FILTER (WHERE runner = 'chain'), 0) AS chain_items"
    ", coalesce(sum(skipped_items) FILTER (WHERE runner = 'chain'), 0) AS chain_skipped"
    ", (SELECT count(*) FROM scan_opportunities) AS opportunities FROM scan_checkpoints"
)
TALLIED = (
    "SELECT "
    + ", ".join(f"coalesce(sum(scans_{s}), 0) AS scans_{s}" for s in STATUSES)
    + ", coalesce(sum(chain_pages), 0) AS chain_pages"
    ", coalesce(sum(chain_items), 0) AS chain_items"
    ", coalesce(sum(chain_skipped), 0) AS chain_skipped"
    ", coalesce(sum(opportunities), 0) AS opportunities FROM row_tallies"
)


@pytest.fixture
def before_0011(services: TestServices) -> Iterator[str]:
    name = f"m0011_{uuid.uuid4().hex[:12]}"
    services._admin(f'CREATE DATABASE "{name}"')
    try:
        url = services.url_of(name)
        upgrade(url, BEFORE)
        yield url
    finally:
        services.drop_database(name)


def _store(
    engine: Engine, created_days_ago: int, status: str, runner: str, finds: int, pages: int
) -> uuid.UUID:
    """A scan as the schema before 0011 holds it, in its day, with its finds."""
    scan_id = uuid.uuid4()
    created = datetime.now(UTC) - timedelta(days=created_days_ago)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO scan_checkpoints (scan_id, user_id, operation_type, status, runner,"
                " page_seq, processed_items, skipped_items, created_at, updated_at)"
                " VALUES (:scan_id, 5000000000, 'market_scan', :status, :runner, :pages,"
                " :items, :skipped, :created, :created)"
            ),
            {"scan_id": scan_id, "status": status, "runner": runner, "pages": pages,
             "items": pages * 100 + 7, "skipped": pages % 3, "created": created},
        )  # fmt: skip
        for number in range(finds):
            connection.execute(
                text(
                    "INSERT INTO scan_opportunities (scan_id, scan_day, item_id, title,"
                    " price_cents, reference_price_cents, profit_hundredths, page_seq)"
                    " VALUES (:scan_id, :day, :item, 'AK', 100, 200, 8600, 0)"
                ),
                {"scan_id": scan_id, "day": created.date(), "item": f"item-{number}".encode()},
            )
    return scan_id


def _read(engine: Engine, sql: str) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            key: int(value) for key, value in connection.execute(text(sql)).one()._mapping.items()
        }


def _rows(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT to_jsonb(c) FROM scan_checkpoints c UNION ALL"
                    " SELECT to_jsonb(o) FROM scan_opportunities o ORDER BY 1"
                )
            ).scalars()
        )


def _leftovers(engine: Engine) -> list[str]:
    """The table, functions and triggers of 0011 still in the database."""
    with engine.connect() as connection:
        return list(
            connection.execute(
                text(
                    "SELECT relname FROM pg_class WHERE relname = 'row_tallies'"
                    " UNION ALL SELECT proname FROM pg_proc WHERE proname LIKE 'row_tallies%'"
                    " UNION ALL SELECT tgname FROM pg_trigger WHERE tgname LIKE 'row_tallies%'"
                )
            ).scalars()
        )


def test_upgrade_tallies_the_stored_rows_keeps_them_tallied_and_downgrade_leaves_no_trace(
    before_0011: str,
) -> None:
    engine = create_engine(driver_url(before_0011))
    # Given scans of every status and both runners, today and ten days ago, with finds
    scans = [
        _store(engine, days_ago, status, runner, finds=(index % 4), pages=index + 1)
        for index, (days_ago, status, runner) in enumerate(
            (days_ago, status, runner)
            for days_ago in (0, 10)
            for status in STATUSES
            for runner in ("chain", "caller")
        )
    ]
    rows = _rows(engine)
    truth = _read(engine, TRUTH)
    assert truth["opportunities"] > 0 and truth["chain_pages"] > 0
    # When the database is upgraded to 0011
    upgrade(before_0011, "0011")
    # Then the tallies hold what the rows count, and the rows are as they were
    assert _read(engine, TALLIED) == truth
    assert _rows(engine) == rows
    # And writes after it are tallied as they happen: a new scan, its pages and finds, a
    # status change, a caller's own save, a deleted scan with its finds
    new = _store(engine, 0, "in_progress", "chain", finds=3, pages=0)
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE scan_checkpoints SET page_seq = page_seq + 2, processed_items = 250,"
                " status = 'completed' WHERE scan_id = :s"
            ),
            {"s": new},
        )
        connection.execute(
            text("UPDATE scan_checkpoints SET processed_items = 1 WHERE runner = 'caller'")
        )
        connection.execute(
            text("UPDATE scan_checkpoints SET lease_owner = 'w2@host' WHERE runner = 'chain'")
        )
        for table in ("scan_opportunities", "scan_checkpoints"):
            connection.execute(text(f"DELETE FROM {table} WHERE scan_id = :s"), {"s": scans[2]})
    assert _read(engine, TALLIED) == _read(engine, TRUTH)
    rows = _rows(engine)
    # When it is downgraded to 0010
    downgrade(before_0011, BEFORE)
    # Then nothing of 0011 is left, the rows are as they were, and they can be written
    assert _leftovers(engine) == []
    assert _rows(engine) == rows
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM scan_checkpoints WHERE scan_id = :s"), {"s": new})
    # And upgraded again, the tallies start from the rows as they are then
    upgrade(before_0011, "0011")
    assert _read(engine, TALLIED) == _read(engine, TRUTH)
    engine.dispose()
