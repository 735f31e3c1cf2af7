"""The lifecycle of opportunity days: a scan's rows land in its creation day, a re-run page
stores nothing twice, a day is dropped whole once none of its checkpoints is left (its
rows tallied), a day a live or recent scan keeps is never dropped (its finished scans'
rows are deleted one by one), and a cleanup killed midway loses and double-counts nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import event, func, literal_column, select, text, update
from sqlalchemy.orm import Session

from models import RUNNER_CHAIN, ScanCheckpoint, ScanOpportunity
from tests.support.opportunities import opportunity
from worker.db import opportunity_days as days_sql
from worker.db import page_sql, retention, tallies


def _today(session: Session) -> date:
    return days_sql.today(session)


def _scan(
    session: Session, created_days_ago: int, status: str, updated_days_ago: int, finds: int
) -> uuid.UUID:
    """A chain scan created and last updated so many days ago, with `finds` opportunities,
    its day's partition made if missing."""
    scan_id = uuid.uuid4()
    created = datetime.now(UTC) - timedelta(days=created_days_ago)
    day = created.date()
    if day not in days_sql.partitioned_days(session):
        days_sql.make_day(session, day)
    session.add(
        ScanCheckpoint(
            scan_id=scan_id, user_id=1, operation_type="market_scan", status=status,
            runner=RUNNER_CHAIN, page_seq=3, processed_items=300, params={"game": "csgo"},
            created_at=created, updated_at=datetime.now(UTC) - timedelta(days=updated_days_ago),
        )
    )  # fmt: skip
    session.flush()
    session.add_all(opportunity(session, scan_id, f"item-{n}") for n in range(finds))
    session.commit()
    return scan_id


def _rows_of(session: Session, scan_id: uuid.UUID) -> int:
    query = select(func.count()).select_from(ScanOpportunity)
    return session.scalar(query.where(ScanOpportunity.scan_id == scan_id)) or 0


def _retired(session: Session) -> dict[tuple[str, str], int]:
    session.commit()
    return tallies.read(session)


def test_a_scans_rows_go_to_its_creation_day_and_a_rerun_page_stores_nothing_twice(
    session: Session,
) -> None:
    scan_id = _scan(session, 3, "in_progress", 0, 0)
    day = _today(session) - timedelta(days=3)
    # (how each was judged, fee, exits, sales and lock, left out: null, as on rows before)
    arrays = {
        **{name: [None, None] for name, _ in page_sql.OPPORTUNITY_ARRAYS},
        "item_id": ["a", "b"], "title": ["A", "B"], "price_cents": [100, 200],
        "reference_price_cents": [200, 300], "profit_hundredths": [8600, 3950],
        "reference_kind": [3, 3], "order_count": [None, None],
        "reference_fetched_at": [None, None],
    }  # fmt: skip
    for page_seq in (0, 1):  # the same listings again, as a re-run or a moved listing
        session.execute(
            page_sql.INSERT_FOUND,
            {"scan_id": scan_id, "scan_day": day, "page_seq": page_seq, **arrays},
        )
    session.commit()
    table = literal_column("tableoid::regclass::text")
    placed = session.execute(select(ScanOpportunity.item_id, ScanOpportunity.page_seq, table)).all()
    assert sorted(placed) == [("a", 0, days_sql.table_of(day)), ("b", 0, days_sql.table_of(day))]


def test_cleanup_drops_finished_days_whole_and_keeps_every_live_scan(session: Session) -> None:
    # Given day A: two scans finished 10 days ago; day B: a scan still running (last
    # touched 9 days ago) and a paused one; day C: a scan finished long ago and one that
    # ran on until yesterday (longer than the retention)
    a1, a2 = _scan(session, 10, "completed", 10, 4), _scan(session, 10, "failed", 10, 3)
    b_live, b_paused = _scan(session, 9, "in_progress", 9, 5), _scan(session, 9, "paused", 9, 2)
    c_old, c_long = _scan(session, 12, "cancelled", 12, 6), _scan(session, 12, "completed", 1, 7)
    today = _today(session)
    day_a, day_b, day_c = (today - timedelta(days=n) for n in (10, 9, 12))
    assert days_sql.droppable_days(session, retention.plan_cleanup(session, 7).cutoff) == [day_a]
    session.rollback()
    before = _retired(session)
    deletes: list[object] = []

    def record(conn: object, cursor: object, statement: str, params: object, *a: object) -> None:
        if statement.startswith(("DELETE FROM scan_opportunities", "DELETE FROM scan_checkp")):
            deletes.append(params)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        # When the cleanup runs
        assert retention.cleanup_old_checkpoints(session, 7, pause_ratio=0) == 3
    finally:
        event.remove(engine, "before_cursor_execute", record)
    # Then day A is gone whole from both tables, no row of it deleted one by one
    for table in days_sql.TABLES:
        days = set(days_sql.partitioned_days(session, table))
        assert day_a not in days and {day_b, day_c} <= days
    assert not any(str(scan) in str(params) for params in deletes for scan in (a1, a2))
    # And the live, paused and recent scans keep their rows and checkpoints
    left = set(session.scalars(select(ScanCheckpoint.scan_id)))
    assert left == {b_live, b_paused, c_long}
    assert [_rows_of(session, s) for s in (b_live, b_paused, c_long)] == [5, 2, 7]
    # And the finished scan of the day kept by a long run lost its rows one by one
    assert _rows_of(session, c_old) == 0
    # And the tallies took exactly what left the rows
    after = _retired(session)
    gained = {key: after.get(key, 0) - before.get(key, 0) for key in after}
    assert gained[(tallies.RETIRED_OPPORTUNITIES, "")] == 4 + 3 + 6
    assert gained[(tallies.CLEANUP_ROWS_DELETED, "")] == 3
    assert gained[(tallies.RETIRED_PAGES, "")] == 9
    # And a second run finds nothing more to do
    assert retention.cleanup_old_checkpoints(session, 7, pause_ratio=0) == 0
    assert _retired(session) == after


def test_a_cleanup_killed_midway_loses_and_double_counts_nothing_and_a_rerun_finishes(
    session: Session, env: dict[str, str]
) -> None:
    # Given a day of 40 finished scans (3 finds each) kept by a live scan of the same day
    # (so they go one by one), and a finished day of 5 scans (dropped whole)
    doomed = [_scan(session, 10, "completed", 10, 3) for _ in range(40)]
    live = _scan(session, 10, "in_progress", 10, 4)
    finished_day = [_scan(session, 12, "completed", 12, 2) for _ in range(5)]
    total = session.scalar(select(func.count()).select_from(ScanOpportunity))
    before = _retired(session)
    # When a cleanup of one row a batch, pausing long between batches, is killed midway
    slow = {**env, "MARKETSCAN_CLEANUP_BATCH_SIZE": "1", "MARKETSCAN_CLEANUP_PAUSE_RATIO": "50"}
    process = subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "cleanup", "--days", "7"],
        env=slow, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while _left(session, doomed) > 30:
        assert process.poll() is None and time.monotonic() < deadline, "cleanup never began"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    # Then what it did so far stands (the finished day dropped before the batches began),
    # the live scan is whole, and the counters already add up
    assert 0 < _left(session, doomed) < 40
    assert _left(session, finished_day) == 0
    assert _rows_of(session, live) == 4 and _left(session, [live]) == 1
    _assert_counted(session, before, total)
    # When the cleanup runs again, Then it finishes: the kept day's finished scans gone one
    # by one, the live scan and its day whole, each row counted once
    retention.cleanup_old_checkpoints(session, 7, pause_ratio=0)
    assert _left(session, doomed) == 0
    assert _today(session) - timedelta(days=12) not in days_sql.partitioned_days(session)
    assert _today(session) - timedelta(days=10) in days_sql.partitioned_days(session)
    assert _rows_of(session, live) == 4 and _left(session, [live]) == 1
    _assert_counted(session, before, total)
    after = _retired(session)
    assert (
        after[(tallies.CLEANUP_ROWS_DELETED, "")]
        - before.get((tallies.CLEANUP_ROWS_DELETED, ""), 0)
        == 45
    )


def _left(session: Session, scans: list[uuid.UUID]) -> int:
    session.commit()
    query = select(func.count()).select_from(ScanCheckpoint)
    return session.scalar(query.where(ScanCheckpoint.scan_id.in_(scans))) or 0


def _assert_counted(session: Session, before: dict[tuple[str, str], int], total: int) -> None:
    """Every opportunity is either still stored or tallied as retired, never both."""
    live = session.scalar(select(func.count()).select_from(ScanOpportunity)) or 0
    key = (tallies.RETIRED_OPPORTUNITIES, "")
    assert live + _retired(session).get(key, 0) - before.get(key, 0) == total


def test_an_old_failed_scan_resumed_keeps_its_day(session: Session) -> None:
    # Given a day whose only scan failed long ago and is being resumed right now
    failed = _scan(session, 10, "failed", 10, 2)
    session.execute(
        update(ScanCheckpoint)
        .where(ScanCheckpoint.scan_id == failed)
        .values(status="in_progress", updated_at=func.now())
    )
    session.commit()
    # When the cleanup runs, Then the resumed scan and its day's rows stay
    assert retention.cleanup_old_checkpoints(session, 7, pause_ratio=0) == 0
    assert _rows_of(session, failed) == 2
    assert _today(session) - timedelta(days=10) in days_sql.partitioned_days(session)


def test_a_day_whose_table_is_in_use_is_left_untallied_for_the_next_cleanup(
    session: Session, database_url: str
) -> None:
    from sqlalchemy import create_engine

    from worker.db import driver_url

    # Given a finished day, and a reader holding scan_opportunities open (a results query)
    scan_id = _scan(session, 10, "completed", 10, 3)
    day = _today(session) - timedelta(days=10)
    before = _retired(session)
    reader_engine = create_engine(driver_url(database_url))
    reader = reader_engine.connect()
    reader.execute(text("SELECT count(*) FROM scan_opportunities"))
    try:
        # When the cleanup runs, Then it leaves the day whole, checkpoint included, untallied
        cleanup = retention.cleanup_old_checkpoints
        assert cleanup(session, 7, pause_ratio=0, sleep=lambda s: None) == 0
        assert day in days_sql.partitioned_days(session)
        assert _left(session, [scan_id]) == 1 and _rows_of(session, scan_id) == 3
        key = (tallies.RETIRED_OPPORTUNITIES, "")
        counted = {name: n for name, n in _retired(session).items() if name[0].startswith("re")}
        assert counted == {name: n for name, n in before.items() if name[0].startswith("re")}
    finally:
        reader.rollback()
        reader.close()
        reader_engine.dispose()
    # When the next cleanup runs, Then the day goes, its rows tallied once
    assert retention.cleanup_old_checkpoints(session, 7, pause_ratio=0) == 1
    assert day not in days_sql.partitioned_days(session)
    assert _retired(session)[key] == before.get(key, 0) + 3


def _walk_backdated_scan(session: Session, created_days_ago: int) -> uuid.UUID:
    """A simulated scan started, its creation backdated, then walked to its end by the page
    runner itself (in process), as a scan that ran for days would commit its last pages."""
    from dataclasses import replace

    from worker.chain import lifecycle
    from worker.chain.runner import PageContext, run_page
    from worker.db import session_scope
    from worker.domain.page_message import PageMessage
    from worker.domain.scan_params import ScanParams
    from worker.settings import get_settings

    settings = replace(get_settings(), slice_pages=1)
    published: list[PageMessage] = []
    params = ScanParams(game="csgo", page_size=100, market_options={"items": 400, "seed": 5})
    with session_scope() as opened:
        scan_id = lifecycle.start_scan(opened, params, settings, published.append)
    session.execute(
        update(ScanCheckpoint)
        .where(ScanCheckpoint.scan_id == scan_id)
        .values(created_at=func.now() - timedelta(days=created_days_ago))
    )
    session.commit()
    context = PageContext(
        owner="w1@test", settings=settings, publish=published.append, sleep=lambda s: None
    )
    while published:
        run_page(published.pop(0), context)
    return scan_id


def _placed(session: Session, scan_id: uuid.UUID) -> set[str]:
    return set(
        session.scalars(
            text("SELECT DISTINCT tableoid::regclass::text FROM scan_opportunities"
                 " WHERE scan_id = :scan_id"),
            {"scan_id": scan_id},
        )
    )  # fmt: skip


def test_a_page_commit_stores_its_finds_in_the_scans_creation_day(
    session: Session, env: dict[str, str]
) -> None:
    # Given a scan created three days ago, whose day has a partition
    day = _today(session) - timedelta(days=3)
    days_sql.make_day(session, day)
    session.commit()
    # When its pages commit today, Then every find lands in the day it was created
    scan_id = _walk_backdated_scan(session, 3)
    assert _rows_of(session, scan_id) > 0
    assert _placed(session, scan_id) == {days_sql.table_of(day)}


def test_finds_of_a_day_nobody_made_go_to_undated_and_leave_with_their_checkpoint(
    session: Session, env: dict[str, str]
) -> None:
    from worker.db.scan_queries import top_opportunities

    # Given a scan created 20 days ago, a day with no partition (cleanup did not run)
    scan_id = _walk_backdated_scan(session, 20)
    found = _rows_of(session, scan_id)
    assert found > 0 and _placed(session, scan_id) == {f"{days_sql.SCHEMA}.{days_sql.UNDATED}"}
    # Then results still read them
    assert len(top_opportunities(session, scan_id, top=1000)) == found
    # When the scan is past retention, Then cleanup deletes its finds one by one, tallied
    session.execute(
        update(ScanCheckpoint)
        .where(ScanCheckpoint.scan_id == scan_id)
        .values(updated_at=func.now() - timedelta(days=20))
    )
    session.commit()
    before = _retired(session).get((tallies.RETIRED_OPPORTUNITIES, ""), 0)
    assert retention.cleanup_old_checkpoints(session, 7, pause_ratio=0) == 1
    assert _rows_of(session, scan_id) == 0
    assert _retired(session)[(tallies.RETIRED_OPPORTUNITIES, "")] == before + found


def test_a_coming_day_whose_finds_already_went_to_undated_is_not_made_over_them(
    session: Session, env: dict[str, str]
) -> None:
    # Given tomorrow's partition missing, and a scan of tomorrow whose finds went to undated
    tomorrow = _today(session) + timedelta(days=1)
    session.execute(text(f"DROP TABLE {days_sql.table_of(tomorrow)}"))
    session.commit()
    scan_id = _walk_backdated_scan(session, -1)
    assert _placed(session, scan_id) == {f"{days_sql.SCHEMA}.{days_sql.UNDATED}"}
    # When the coming days are made, Then tomorrow is left to undated (making it over
    # those rows would fail), and the days after it are there
    made = days_sql.make_days_ahead(session, ahead=3)
    session.commit()
    assert tomorrow not in made
    assert tomorrow not in days_sql.partitioned_days(session, days_sql.OPPORTUNITIES)
    assert _today(session) + timedelta(days=3) in days_sql.partitioned_days(session)
