"""Checkpoints partitioned by day: a scan id stays unique across days (two racing starts,
one of them waiting on the other's open transaction, and a start of an id stored on another
day), a day is dropped only while every checkpoint of it is done with, even when a scan of
it is resumed a moment before the drop, and the fleet's counters never go backwards."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.orm import Session

from models import RUNNER_CHAIN, ScanCheckpoint
from tests.support.opportunities import opportunity
from worker.db import checkpoints as store
from worker.db import driver_url, retention, tallies
from worker.db import opportunity_days as days_sql
from worker.errors import DuplicateScan

RACERS = 8


def _count(session: Session, scan_id: uuid.UUID) -> int:
    session.commit()
    query = select(func.count()).select_from(ScanCheckpoint)
    return session.scalar(query.where(ScanCheckpoint.scan_id == scan_id)) or 0


def test_a_start_racing_an_uncommitted_start_of_the_same_id_waits_and_inserts_nothing(
    session: Session, database_url: str
) -> None:
    engine = create_engine(driver_url(database_url))
    scan_id = uuid.uuid4()
    outcome: list[object] = []
    # Given a start of the scan id inserted but not committed yet
    first = Session(engine)
    store.create_checkpoint(first, scan_id, 1, "market_scan")

    def second_start() -> None:
        with Session(engine) as second:
            try:
                store.create_checkpoint(second, scan_id, 1, "market_scan")
                second.commit()
                outcome.append("inserted")
            except DuplicateScan as exc:
                outcome.append(exc)

    # When a second start of it runs, Then it waits for the first one's transaction
    racer = threading.Thread(target=second_start)
    racer.start()
    # A waiting session of this database (the lock on the first start's transaction names
    # no database).
    waiting = (
        "SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid)"
        " WHERE NOT granted AND datname = current_database()"
    )
    while not session.scalar(text(waiting)):
        session.rollback()
        assert racer.is_alive() and not outcome, f"the second start did not wait: {outcome}"
    # When the first one commits, Then the second finds the scan and inserts nothing
    first.commit()
    first.close()
    racer.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], DuplicateScan)
    assert _count(session, scan_id) == 1
    engine.dispose()


def test_of_many_racing_starts_of_one_id_exactly_one_inserts(
    session: Session, database_url: str
) -> None:
    engine = create_engine(driver_url(database_url), pool_size=RACERS)
    scan_id = uuid.uuid4()
    barrier = threading.Barrier(RACERS)
    outcomes: list[str] = []

    def start() -> None:
        with Session(engine) as own:
            own.execute(text("SELECT 1"))  # connected before the race begins
            barrier.wait()
            try:
                store.create_checkpoint(own, scan_id, 1, "market_scan")
                own.commit()
                outcomes.append("inserted")
            except DuplicateScan:
                outcomes.append("duplicate")

    # When eight starts of one scan id race on their own connections
    racers = [threading.Thread(target=start) for _ in range(RACERS)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=60)
    # Then exactly one inserted, and one row exists
    assert sorted(outcomes) == ["duplicate"] * (RACERS - 1) + ["inserted"]
    assert _count(session, scan_id) == 1
    engine.dispose()


def test_a_start_of_an_id_stored_on_another_day_is_a_duplicate(session: Session) -> None:
    # Given a scan created three days ago, in its own day's partition
    scan_id = uuid.uuid4()
    store.create_checkpoint(session, scan_id, 1, "market_scan")
    session.execute(
        update(ScanCheckpoint)
        .where(ScanCheckpoint.scan_id == scan_id)
        .values(created_at=func.now() - timedelta(days=3))
    )
    session.commit()
    placed = session.scalar(
        text("SELECT tableoid::regclass::text FROM scan_checkpoints WHERE scan_id = :s"),
        {"s": scan_id},
    )
    day = (datetime.now(UTC) - timedelta(days=3)).date()
    assert placed in {days_sql.CHECKPOINTS.table_of(day), "scan_checkpoint_days.undated"}
    # When it is started again today, Then nothing is inserted
    with pytest.raises(DuplicateScan):
        store.create_checkpoint(session, scan_id, 1, "market_scan")
    session.rollback()
    assert _count(session, scan_id) == 1
    # And every lookup by scan id still finds it
    loaded = store.load_checkpoint(session, scan_id)
    assert loaded is not None and loaded.scan_id == scan_id
    assert store.mark_checkpoint_failed(session, scan_id, "boom").status.value == "failed"


def _scan(session: Session, days_ago: int, status: str, finds: int) -> uuid.UUID:
    """A chain scan created and last updated `days_ago`, its day made if missing."""
    created = datetime.now(UTC) - timedelta(days=days_ago)
    if created.date() not in days_sql.partitioned_days(session, days_sql.CHECKPOINTS):
        days_sql.make_day(session, created.date())
    scan_id = uuid.uuid4()
    session.add(
        ScanCheckpoint(
            scan_id=scan_id, user_id=1, operation_type="market_scan", status=status,
            runner=RUNNER_CHAIN, page_seq=2, processed_items=200, skipped_items=1,
            params={"game": "csgo"}, created_at=created, updated_at=created,
        )
    )  # fmt: skip
    session.flush()
    session.add_all(opportunity(session, scan_id, f"item-{n}") for n in range(finds))
    session.commit()
    return scan_id


def test_a_scan_resumed_just_before_its_days_drop_keeps_the_day(session: Session) -> None:
    # Given a day whose only scan failed long ago: droppable
    failed = _scan(session, 10, "failed", 3)
    day = days_sql.today(session) - timedelta(days=10)
    plan = retention.plan_cleanup(session, 7)
    assert day in days_sql.droppable_days(session, plan.cutoff)
    session.commit()
    # When the scan is resumed after the cleanup chose the day, before it drops it
    session.execute(
        update(ScanCheckpoint)
        .where(ScanCheckpoint.scan_id == failed)
        .values(status="in_progress", updated_at=func.now())
    )
    session.commit()
    before = tallies.read(session)
    # Then the drop refuses, and the scan, its finds and its day stay, nothing tallied
    with pytest.raises(days_sql.DayInUse):
        days_sql.detach_day(session, day, plan.cutoff)
    session.rollback()
    assert _count(session, failed) == 1
    assert day in days_sql.partitioned_days(session, days_sql.CHECKPOINTS)
    assert day in days_sql.partitioned_days(session, days_sql.OPPORTUNITIES)
    assert tallies.read(session) == before
    # And a whole cleanup keeps it too
    assert retention.cleanup_old_checkpoints(session, 7, pause_ratio=0) == 0
    assert _count(session, failed) == 1


def _fleet_totals(session: Session) -> tuple[int, int, int, int]:
    """Pages, items, skipped and opportunities as the metrics count them: what the rows hold
    plus what cleanup retired from them."""
    session.commit()
    rows, retired = tallies.fleet_rows(session), tallies.read(session)

    def of(name: str) -> int:
        return retired.get((name, ""), 0)

    return (
        rows.pages + of(tallies.RETIRED_PAGES),
        rows.items + of(tallies.RETIRED_ITEMS),
        rows.skipped + of(tallies.RETIRED_SKIPPED),
        rows.opportunities + of(tallies.RETIRED_OPPORTUNITIES),
    )


def test_the_fleets_counters_stay_whole_through_drops_and_deletes(session: Session) -> None:
    # Given a finished day (dropped whole), a day kept by a live scan with a finished one
    # (deleted one by one), and a live scan of today
    for _ in range(3):
        _scan(session, 12, "completed", 2)
    live, kept_finished = _scan(session, 10, "in_progress", 4), _scan(session, 10, "cancelled", 5)
    today_scan = _scan(session, 0, "in_progress", 1)
    before = _fleet_totals(session)
    # When the cleanup runs
    assert retention.cleanup_old_checkpoints(session, 7, pause_ratio=0) == 4
    # Then no counter moved, though the rows left
    assert _fleet_totals(session) == before
    assert [_count(session, s) for s in (live, kept_finished, today_scan)] == [1, 0, 1]
    twelve_days_ago = days_sql.today(session) - timedelta(days=12)
    assert twelve_days_ago not in days_sql.partitioned_days(session)


def test_cleanup_makes_the_coming_days_of_both_tables_and_new_scans_land_in_today(
    session: Session,
) -> None:
    # Given the coming days' partitions gone from both tables
    today = days_sql.today(session)
    coming = [today + timedelta(days=n) for n in range(days_sql.AHEAD_DAYS + 1)]
    for table in days_sql.TABLES:
        for day in coming[1:]:
            session.execute(text(f"DROP TABLE IF EXISTS {table.table_of(day)}"))
    session.commit()
    # When a cleanup plans its run, Then every coming day has a partition in each table
    retention.plan_cleanup(session, 7)
    session.commit()
    for table in days_sql.TABLES:
        assert set(coming) <= set(days_sql.partitioned_days(session, table))
    # And a scan started now lies in today's partition of each table
    scan_id = _scan(session, 0, "in_progress", 1)
    tables = session.scalars(
        text(
            "SELECT tableoid::regclass::text FROM scan_checkpoints WHERE scan_id = :s"
            " UNION ALL SELECT tableoid::regclass::text FROM scan_opportunities"
            " WHERE scan_id = :s"
        ),
        {"s": scan_id},
    ).all()
    assert sorted(tables) == sorted(table.table_of(today) for table in days_sql.TABLES)


def test_a_day_detached_by_a_cleanup_that_stopped_is_dropped_by_the_next_counted_once(
    session: Session,
) -> None:
    # Given a finished day that a cleanup detached (its rows tallied) and then stopped
    _scan(session, 10, "completed", 3)
    day = days_sql.today(session) - timedelta(days=10)
    before = _fleet_totals(session)
    plan = retention.plan_cleanup(session, 7)
    session.commit()
    assert days_sql.detach_day(session, day, plan.cutoff) == 1
    session.commit()
    detached = days_sql.detached_tables(session)
    assert detached == sorted(table.table_of(day) for table in days_sql.TABLES)
    # Then the counters already add up, though the tables are still on disk
    assert _fleet_totals(session) == before
    # When the next cleanup runs, Then the detached tables are gone, counted once
    assert retention.cleanup_old_checkpoints(session, 7, pause_ratio=0) == 0
    assert days_sql.detached_tables(session) == []
    assert _fleet_totals(session) == before


def test_a_days_tallies_read_piece_by_piece_add_up_to_its_rows(session: Session) -> None:
    from worker.db import day_tallies, row_tallies

    # Given a finished day of 60 scans with 4 finds each, spanning many heap blocks
    for _ in range(60):
        _scan(session, 10, "completed", 4)
    day = days_sql.today(session) - timedelta(days=10)
    tables = (days_sql.CHECKPOINTS.table_of(day), days_sql.OPPORTUNITIES.table_of(day))
    pieces: list[float] = []
    # When its rows are counted one heap block at a time
    counted = day_tallies.counts_of(session, *tables, pieces.append, lambda: 0.0, 1)
    session.rollback()
    # Then the pieces were many and their sums are the day's own
    assert len(pieces) > 3
    assert counted == row_tallies.Stored(
        scans_by_status={"in_progress": 0, "paused": 0, "completed": 60, "failed": 0,
                         "cancelled": 0},
        pages=120, items=12_000, skipped=60, opportunities=240,
    )  # fmt: skip
