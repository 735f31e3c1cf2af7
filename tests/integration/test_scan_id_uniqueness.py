"""PostgreSQL itself keeps a scan id to one checkpoint across the days it is partitioned by:
whoever writes the second row (plain SQL into a day or the parent, one statement storing it
twice, two transactions racing, a snapshot that missed the first), it is refused; a scan id
never changes; a row still moves to another day; bulk inserts are not limited by locks; and
once retention has dropped an id's day, the id may start again."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from worker.db import checkpoints as store
from worker.db import driver_url, retention
from worker.db import opportunity_days as days_sql
from worker.errors import DuplicateScan
from worker.state.manager import StateManager

UNIQUE_VIOLATION = "23505"
SERIALIZATION_FAILURE = "40001"
# Sessions of this test's database waiting for a lock (a row's: its locktype is
# transactionid, which names no database).
WAITING = (
    "SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid)"
    " WHERE NOT granted AND datname = current_database()"
)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = create_engine(driver_url(database_url), pool_size=4)
    yield made
    made.dispose()


def _day(engine: Engine, days_ago: int) -> date:
    """A past day with its partitions made (as cleanup made them back then)."""
    with Session(engine) as session:
        day = days_sql.today(session) - timedelta(days=days_ago)
        days_sql.make_day(session, day)
        session.commit()
    return day


def _insert(connection: Connection, scan_id: uuid.UUID, day: date, into: str = "") -> None:
    """A checkpoint of `scan_id` created at noon UTC of `day`, written by plain SQL into
    `into` (a day's partition) or the parent."""
    table = into or "scan_checkpoints"
    connection.execute(
        text(
            f"INSERT INTO {table} (scan_id, user_id, operation_type, created_at, updated_at)"
            " VALUES (:scan_id, 1, 'market_scan', :at, :at)"
        ),
        {"scan_id": scan_id, "at": f"{day.isoformat()} 12:00:00+00"},
    )


def _rows_of(engine: Engine, scan_id: uuid.UUID) -> list[str]:
    with engine.connect() as connection:
        tables = connection.scalars(
            text("SELECT tableoid::regclass::text FROM scan_checkpoints WHERE scan_id = :s"),
            {"s": scan_id},
        )
        return list(tables)


def _sqlstate(error: DBAPIError) -> str | None:
    return getattr(error.orig, "pgcode", None)


def test_a_plain_insert_of_a_stored_id_into_another_days_partition_is_refused(
    engine: Engine,
) -> None:
    # Given a scan id stored three days ago
    scan_id, first, second = uuid.uuid4(), _day(engine, 3), _day(engine, 2)
    with engine.begin() as connection:
        _insert(connection, scan_id, first)
    # When plain SQL writes it again straight into another day's partition
    partition = days_sql.CHECKPOINTS.table_of(second)
    with (
        pytest.raises(IntegrityError, match="is stored already") as refused,
        engine.begin() as connection,
    ):
        _insert(connection, scan_id, second, into=partition)
    # Then PostgreSQL refuses it as a unique violation, and the first row stands alone
    assert _sqlstate(refused.value) == UNIQUE_VIOLATION
    assert _rows_of(engine, scan_id) == [days_sql.CHECKPOINTS.table_of(first)]


def test_an_insert_through_the_parent_on_another_day_or_undated_is_refused(
    engine: Engine,
) -> None:
    # Given a scan id stored today
    scan_id = uuid.uuid4()
    with Session(engine) as session:
        store.create_checkpoint(session, scan_id, 1, "market_scan")
        today = days_sql.today(session)
        session.commit()
    # When plain SQL writes it through the parent on a past day, and on a day with no
    # partition (the default one, `undated`)
    for day in (_day(engine, 4), today - timedelta(days=400)):
        with pytest.raises(IntegrityError) as refused, engine.begin() as connection:
            _insert(connection, scan_id, day)
        # Then each is refused
        assert _sqlstate(refused.value) == UNIQUE_VIOLATION
    assert _rows_of(engine, scan_id) == [days_sql.CHECKPOINTS.table_of(today)]


def test_one_statement_storing_an_id_on_two_days_is_refused(engine: Engine) -> None:
    scan_id, first, second = uuid.uuid4(), _day(engine, 3), _day(engine, 2)
    # When one INSERT carries the same new id twice, on two days
    with pytest.raises(IntegrityError) as refused, engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO scan_checkpoints (scan_id, user_id, operation_type, created_at)"
                " VALUES (:s, 1, 'market_scan', :a), (:s, 1, 'market_scan', :b)"
            ),
            {"s": scan_id, "a": f"{first} 12:00:00+00", "b": f"{second} 12:00:00+00"},
        )
    # Then the statement is refused and stores neither
    assert _sqlstate(refused.value) == UNIQUE_VIOLATION
    assert _rows_of(engine, scan_id) == []


def test_a_checkpoints_scan_id_cannot_be_changed(engine: Engine) -> None:
    # Given two stored scans
    taken, moved = uuid.uuid4(), uuid.uuid4()
    first, second = _day(engine, 3), _day(engine, 2)
    with engine.begin() as connection:
        _insert(connection, taken, first)
        _insert(connection, moved, second)
    # When an UPDATE gives one of them the other's id, or a fresh one, Then it is refused
    for new_id in (taken, uuid.uuid4()):
        with pytest.raises(IntegrityError, match="never changes"), engine.begin() as connection:
            connection.execute(
                text("UPDATE scan_checkpoints SET scan_id = :new WHERE scan_id = :old"),
                {"new": new_id, "old": moved},
            )
    assert len(_rows_of(engine, moved)) == 1 and len(_rows_of(engine, taken)) == 1
    # And an UPDATE that leaves the id as it is still passes
    with engine.begin() as connection:
        changed = connection.execute(
            text("UPDATE scan_checkpoints SET scan_id = scan_id, note = 'x' WHERE scan_id = :s"),
            {"s": moved},
        )
        assert changed.rowcount == 1


def test_a_row_moved_to_another_day_keeps_its_id(engine: Engine) -> None:
    # Given a scan stored three days ago
    scan_id, first, second = uuid.uuid4(), _day(engine, 3), _day(engine, 2)
    with engine.begin() as connection:
        _insert(connection, scan_id, first)
    # When an UPDATE of created_at moves its row into another day's partition
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE scan_checkpoints SET created_at = :at WHERE scan_id = :s"),
            {"s": scan_id, "at": f"{second} 12:00:00+00"},
        )
    # Then the move is not taken for a second row: the row lies in its new day
    assert _rows_of(engine, scan_id) == [days_sql.CHECKPOINTS.table_of(second)]


def test_of_two_uncommitted_inserts_of_one_id_on_two_days_the_second_waits_and_is_refused(
    engine: Engine,
) -> None:
    scan_id, first_day, second_day = uuid.uuid4(), _day(engine, 3), _day(engine, 2)
    outcome: list[object] = []
    # Given plain SQL that inserted the id on one day, not committed yet
    first = engine.connect()
    first.begin()
    _insert(first, scan_id, first_day)

    def second_insert() -> None:
        try:
            with engine.begin() as connection:
                _insert(connection, scan_id, second_day)
            outcome.append("inserted")
        except DBAPIError as exc:
            outcome.append(exc)

    # When another transaction inserts it on another day, Then it waits for the first
    racer = threading.Thread(target=second_insert)
    racer.start()
    with engine.connect() as watcher:
        while not watcher.scalar(text(WAITING)):
            watcher.rollback()
            assert racer.is_alive() and not outcome, f"the second insert did not wait: {outcome}"
    # When the first commits, Then the second is refused: one row
    first.commit()
    first.close()
    racer.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], IntegrityError), outcome
    assert _sqlstate(outcome[0]) == UNIQUE_VIOLATION
    assert _rows_of(engine, scan_id) == [days_sql.CHECKPOINTS.table_of(first_day)]


def test_a_repeatable_read_insert_whose_snapshot_missed_the_id_is_refused(
    engine: Engine,
) -> None:
    scan_id, first_day, second_day = uuid.uuid4(), _day(engine, 3), _day(engine, 2)
    # Given a REPEATABLE READ transaction whose snapshot is taken
    late = engine.connect().execution_options(isolation_level="REPEATABLE READ")
    late.begin()
    assert late.scalar(text("SELECT count(*) FROM scan_checkpoints WHERE scan_id = :s"),
                       {"s": scan_id}) == 0  # fmt: skip
    # And another transaction that then stored the id and committed
    with engine.begin() as connection:
        _insert(connection, scan_id, first_day)
    # When the first inserts the id on another day, Then it cannot be serialized: refused
    with pytest.raises(OperationalError) as refused:
        _insert(late, scan_id, second_day)
    late.rollback()
    late.close()
    assert _sqlstate(refused.value) == SERIALIZATION_FAILURE
    assert _rows_of(engine, scan_id) == [days_sql.CHECKPOINTS.table_of(first_day)]


def test_a_bulk_insert_of_many_ids_in_one_transaction_is_not_limited_by_locks(
    engine: Engine,
) -> None:
    # When one statement stores 20,000 checkpoints (far more than the shared lock table
    # holds locks), Then it stores every one
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO scan_checkpoints (scan_id, user_id, operation_type)"
                " SELECT gen_random_uuid(), 1, 'market_scan' FROM generate_series(1, 20000)"
            )
        )
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM scan_checkpoints")) == 20_000


def test_create_checkpoint_refuses_an_id_that_plain_sql_stored_on_another_day(
    engine: Engine,
) -> None:
    # Given a scan id that plain SQL stored three days ago
    scan_id = uuid.uuid4()
    with engine.begin() as connection:
        _insert(connection, scan_id, _day(engine, 3))
    with Session(engine) as session:
        # When a scan of that id is started, Then it is a duplicate, and the caller's
        # transaction goes on
        with pytest.raises(DuplicateScan, match=str(scan_id)):
            store.create_checkpoint(session, scan_id, 1, "market_scan")
        other = uuid.uuid4()
        assert store.create_checkpoint(session, other, 1, "market_scan").scan_id == other
        session.commit()
    assert len(_rows_of(engine, scan_id)) == 1 and len(_rows_of(engine, other)) == 1


def test_a_start_racing_an_uncommitted_plain_insert_of_its_id_waits_and_is_a_duplicate(
    engine: Engine,
) -> None:
    scan_id, day = uuid.uuid4(), _day(engine, 3)
    outcome: list[object] = []
    # Given plain SQL that inserted the id on another day, not committed yet
    first = engine.connect()
    first.begin()
    _insert(first, scan_id, day)

    def start() -> None:
        with Session(engine) as session:
            try:
                store.create_checkpoint(session, scan_id, 1, "market_scan")
                session.commit()
                outcome.append("inserted")
            except Exception as exc:  # the test asserts which
                outcome.append(exc)

    # When a scan of that id is started, Then the start waits for that transaction
    racer = threading.Thread(target=start)
    racer.start()
    with engine.connect() as watcher:
        while not watcher.scalar(text(WAITING)):
            watcher.rollback()
            assert racer.is_alive() and not outcome, f"the start did not wait: {outcome}"
    # When it commits, Then the start is a duplicate (what a repeated start handles), and
    # stores nothing
    first.commit()
    first.close()
    racer.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], DuplicateScan), outcome
    assert _rows_of(engine, scan_id) == [days_sql.CHECKPOINTS.table_of(day)]


def test_an_asyncio_state_manager_refuses_a_taken_id_as_a_duplicate(database_url: str) -> None:
    # Given a scan stored through the asyncio StateManager (asyncpg, whose errors name the
    # refusing constraint otherwise than psycopg2's)
    scan_id = uuid.uuid4()

    async def create_twice() -> None:
        engine = create_async_engine(driver_url(database_url, "postgresql+asyncpg"))
        try:
            async with AsyncSession(engine) as session:
                manager = StateManager(session)
                await manager.create_checkpoint(scan_id, 1, "market_scan")
                # When it is created again, Then it is a duplicate
                with pytest.raises(DuplicateScan, match=str(scan_id)):
                    await manager.create_checkpoint(scan_id, 2, "market_scan")
        finally:
            await engine.dispose()

    asyncio.run(create_twice())


def test_once_retention_dropped_its_day_a_scan_id_may_start_again(engine: Engine) -> None:
    # Given a scan that failed ten days ago, alone in its day
    scan_id, day = uuid.uuid4(), _day(engine, 10)
    with engine.begin() as connection:
        _insert(connection, scan_id, day)
        connection.execute(
            text("UPDATE scan_checkpoints SET status = 'failed' WHERE scan_id = :s"),
            {"s": scan_id},
        )
    with Session(engine) as session:
        # When the cleanup drops its day whole
        assert retention.cleanup_old_checkpoints(session, 7, pause_ratio=0) == 1
        assert day not in days_sql.partitioned_days(session)
        # Then the id may start a new scan
        created = store.create_checkpoint(session, scan_id, 1, "market_scan")
        session.commit()
        assert created.scan_id == scan_id
        today = days_sql.today(session)
    assert _rows_of(engine, scan_id) == [days_sql.CHECKPOINTS.table_of(today)]
