"""Retention cleanup on PostgreSQL: paced batches that delete exactly the old terminal scans.

The pause is asserted through the injectable sleep and clock, never by timing: between
batches the cleanup sleeps in proportion to the batch it just ran, and sleeps holding no
transaction and no lock, with the batch already committed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity
from tests.support.opportunities import opportunity
from worker import db
from worker.db import checkpoints as store
from worker.db import driver_url, retention
from worker.settings import get_settings
from worker.state.manager import StateManager


def _scans(session: Session) -> tuple[list[uuid.UUID], uuid.UUID, uuid.UUID]:
    """Seven old finished scans, an old live one and a recent finished one."""
    old = [uuid.uuid4() for _ in range(7)]
    old_live, recent_done = uuid.uuid4(), uuid.uuid4()
    for scan_id in (*old, old_live, recent_done):
        store.create_checkpoint(session, scan_id, 1, "market_scan")
    for scan_id in old[:5]:
        store.mark_checkpoint_completed(session, scan_id)
    for scan_id in old[5:]:
        store.mark_checkpoint_failed(session, scan_id, "boom")
    store.mark_checkpoint_completed(session, recent_done)
    session.add_all([opportunity(session, scan_id) for scan_id in (old[0], old[6], recent_done)])
    session.commit()
    session.execute(
        update(ScanCheckpoint)
        .where(ScanCheckpoint.scan_id.in_([*old, old_live]))
        .values(updated_at=func.now() - timedelta(days=30))
    )
    session.commit()
    return old, old_live, recent_done


def _clock(readings: list[float]) -> Iterator[float]:
    yield from readings


def test_cleanup_sleeps_between_batches_in_proportion_to_each_batch_holding_nothing(
    session: Session, database_url: str
) -> None:
    # Given 7 old finished scans (3 + 3 + 1 in batches of 3), an old live and a recent one
    old, old_live, recent_done = _scans(session)
    # and a clock under which the first batch takes 10 ms and the second 30 ms
    readings = _clock([0.0, 0.010, 1.0, 1.030, 2.0, 2.005])
    observer = create_engine(driver_url(database_url))
    seen: list[tuple[float, int, int]] = []

    def sleep(seconds: float) -> None:
        # What another connection sees while the cleanup pauses.
        with observer.connect() as connection:
            left = connection.scalar(select(func.count()).where(ScanCheckpoint.scan_id.in_(old)))
            locks = connection.scalar(
                text(
                    "SELECT count(*) FROM pg_locks JOIN pg_class ON pg_class.oid = relation"
                    " WHERE relname IN ('scan_checkpoints', 'scan_opportunities')"
                    " AND pid <> pg_backend_pid()"
                )
            )
        seen.append((seconds, int(left or 0), int(locks or 0)))

    # When the cleanup runs with a pause ratio of 2
    try:
        deleted = retention.cleanup_old_checkpoints(
            session, days=7, batch_size=3, pause_ratio=2.0, sleep=sleep,
            clock=lambda: next(readings),
        )  # fmt: skip
    finally:
        observer.dispose()

    # Then it slept twice the time of each full batch, after its commit and holding no lock,
    # and not after the last, short batch
    assert [(round(seconds, 6), left, locks) for seconds, left, locks in seen] == [
        (0.02, 4, 0),
        (0.06, 1, 0),
    ]
    # And exactly the old finished scans went, with their opportunities
    assert deleted == 7
    session.expire_all()
    assert set(session.scalars(select(ScanCheckpoint.scan_id))) == {old_live, recent_done}
    assert list(session.scalars(select(ScanOpportunity.scan_id))) == [recent_done]
    # And the deletes' asynchronous commit did not outlive them on the connection
    assert session.scalar(text("SHOW synchronous_commit")) == "on"


def test_cleanup_without_a_pause_ratio_never_sleeps(session: Session) -> None:
    _old, old_live, recent_done = _scans(session)
    sleeps: list[float] = []

    deleted = retention.cleanup_old_checkpoints(
        session, days=7, batch_size=3, pause_ratio=0.0, sleep=sleeps.append
    )

    assert deleted == 7
    assert sleeps == []
    assert set(session.scalars(select(ScanCheckpoint.scan_id))) == {old_live, recent_done}


def test_the_async_manager_deletes_batch_by_batch_exactly_the_old_finished_scans(
    env: dict[str, str], session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given batches of 3 and a pause of 1x, read from the environment as a worker would
    monkeypatch.setenv("MARKETSCAN_CLEANUP_BATCH_SIZE", "3")
    monkeypatch.setenv("MARKETSCAN_CLEANUP_PAUSE_RATIO", "1")
    get_settings.cache_clear()
    _old, old_live, recent_done = _scans(session)

    async def cleanup() -> int:
        async with AsyncSession(db.async_engine()) as async_session:
            manager = StateManager(async_session)
            return await manager.cleanup_old_checkpoints(days=7)

    # When the asyncio flavour cleans up: three batches, two paused on the event loop
    deleted = asyncio.run(cleanup())

    # Then exactly the old finished scans went, with their opportunities
    assert deleted == 7
    session.expire_all()
    assert set(session.scalars(select(ScanCheckpoint.scan_id))) == {old_live, recent_done}
    assert list(session.scalars(select(ScanOpportunity.scan_id))) == [recent_done]
