"""The days of a scan's rows: one partition per UTC day its scans were created, of both
`scan_checkpoints` and `scan_opportunities`, made ahead of time, dropped whole together once
every checkpoint of the day is terminal and past the retention.

A scan's day is the UTC date of its checkpoint's `created_at` (the opportunities' `scan_day`
column; the checkpoints are partitioned by range of `created_at` itself, a day's partition
spanning its UTC midnights), so every row of one scan lies in one day of each table, and
dropping a day writes a few catalogue records to the WAL instead of one record (and a page
image) per row. The partitions live in schemas `scan_checkpoint_days` and
`scan_opportunity_days`, out of the models' sight; each table's default partition
(`undated`) takes the rows of a day nobody made ahead (cleanup did not run for a week),
which cleanup deletes row by row.

Nothing here commits. DDL on a partition takes an ACCESS EXCLUSIVE lock on the parent table
for a moment; it is asked for with a short lock timeout, so a page commit waits at most
that long behind it, and a day that cannot be had now is simply left for the next cleanup.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, text
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity
from worker.db import day_tallies, row_tallies, tallies
from worker.domain.status import TERMINAL_STATUSES, ScanStatus

UNDATED = "undated"
# Days made ahead, so a scan started before the next cleanup finds its day.
AHEAD_DAYS = 7
# How long DDL may wait for the parent's lock (and so how long a page commit may wait
# behind that DDL).
LOCK_TIMEOUT_MS = 100
_TERMINAL = [status.value for status in TERMINAL_STATUSES]
_ACTIVE = [status.value for status in ScanStatus if status not in TERMINAL_STATUSES]


@dataclass(frozen=True)
class DayTable:
    """A table partitioned by its scans' day: where its days live, and its key's bounds."""

    parent: str
    schema: str
    key: str
    # SQL type of a day's bounds: a date, or the UTC midnight as a timestamptz.
    bound_type: str

    def bound(self, day: date) -> str:
        suffix = " 00:00:00+00" if self.bound_type == "timestamptz" else ""
        return f"'{day.isoformat()}{suffix}'"

    def table_of(self, day: date) -> str:
        return f"{self.schema}.d{day:%Y%m%d}"


# Checkpoints first: every statement locking both tables takes them in the order a page
# commit does (its checkpoint's UPDATE, then its opportunities' INSERT).
CHECKPOINTS = DayTable(
    ScanCheckpoint.__tablename__, "scan_checkpoint_days", "created_at", "timestamptz"
)
OPPORTUNITIES = DayTable(ScanOpportunity.__tablename__, "scan_opportunity_days", "scan_day", "date")
TABLES = (CHECKPOINTS, OPPORTUNITIES)
SCHEMA = OPPORTUNITIES.schema


def scan_day(created_at: Any) -> ColumnElement[Any]:
    """The day of a scan created at `created_at`: its UTC date."""
    return func.date(func.timezone("UTC", created_at))


def table_of(day: date) -> str:
    """`day`'s partition of the opportunities."""
    return OPPORTUNITIES.table_of(day)


def partitioned_days(session: Session, table: DayTable | None = None) -> list[date]:
    """The days that have a partition of their own (in `table`, or in either), oldest first."""
    days: set[date] = set()
    for one in TABLES if table is None else (table,):
        names = session.scalars(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE i.inhparent = CAST(:parent AS regclass) AND n.nspname = :schema"
                " AND c.relname ~ '^d[0-9]{8}$'"
            ),
            {"parent": one.parent, "schema": one.schema},
        )
        days.update(datetime.strptime(name[1:], "%Y%m%d").date() for name in names)
    return sorted(days)


def today(session: Session) -> date:
    """The database's UTC date (never a worker's clock)."""
    day = session.scalar(text("SELECT (now() AT TIME ZONE 'UTC')::date"))
    assert isinstance(day, date)
    return day


def make_days_ahead(session: Session, ahead: int = AHEAD_DAYS) -> list[date]:
    """Make the partitions of today and the next `ahead` days that are missing; the days
    any partition was made for. A day whose rows already went to either table's `undated`
    is left there in both (a partition for it would have to move them, and a checkpoint's
    day dropped whole must take every opportunity of it)."""
    first = today(session)
    made = set()
    for offset in range(ahead + 1):
        day = first + timedelta(days=offset)
        missing = [table for table in TABLES if day not in partitioned_days(session, table)]
        if missing and not any(_undated_holds(session, table, day) for table in TABLES):
            for table in missing:
                _make(session, table, day)
            made.add(day)
    return sorted(made)


def make_day(session: Session, day: date) -> None:
    """Make `day`'s partitions, in each table that has none yet."""
    for table in TABLES:
        if day not in partitioned_days(session, table):
            _make(session, table, day)


def _make(session: Session, table: DayTable, day: date) -> None:
    _lock_timeout(session)
    session.execute(
        text(
            f"CREATE TABLE {table.table_of(day)} PARTITION OF {table.parent}"
            f" FOR VALUES FROM ({table.bound(day)}) TO ({table.bound(day + timedelta(days=1))})"
        )
    )


def _within(table: DayTable, day: date) -> str:
    lower, upper = table.bound(day), table.bound(day + timedelta(days=1))
    return f"{table.key} >= {lower} AND {table.key} < {upper}"


def _undated_holds(session: Session, table: DayTable, day: date) -> bool:
    return bool(
        session.scalar(
            text(
                f"SELECT EXISTS (SELECT 1 FROM {table.schema}.{UNDATED}"
                f" WHERE {_within(table, day)})"
            )
        )
    )


def _lock_timeout(session: Session) -> None:
    session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'"))


def _day_sql() -> str:
    return "(created_at AT TIME ZONE 'UTC')::date"


def kept_days(session: Session, cutoff: Any, where: str = "true") -> set[date]:
    """The days (of the checkpoints matching `where`) that keep a checkpoint once the
    terminal ones last updated before `cutoff` are gone: an active scan, or a terminal one
    touched since. Two reads the (status, updated_at) index answers, however many doomed
    rows a day holds."""
    kept: set[date] = set()
    for condition in (
        "status = ANY(:active)",
        "status = ANY(:terminal) AND updated_at >= :cutoff",
    ):
        kept.update(
            session.scalars(
                text(
                    f"SELECT DISTINCT {_day_sql()} FROM scan_checkpoints"
                    f" WHERE ({where}) AND {condition}"
                ),
                {"active": _ACTIVE, "terminal": _TERMINAL, "cutoff": cutoff},
            )
        )
    return kept


def droppable_days(session: Session, cutoff: Any) -> list[date]:
    """Partitioned days before yesterday whose every checkpoint is terminal and last
    updated before `cutoff`: nothing can write to them any more (a scan's rows go to its
    creation day, scans are created now, and a terminal scan is written again only by a
    resume, which makes it active and recent)."""
    before = today(session) - timedelta(days=1)
    candidates = [day for day in partitioned_days(session) if day < before]
    if not candidates:
        return []
    kept = kept_days(session, cutoff, f"created_at < {CHECKPOINTS.bound(before)}")
    # A day some of whose finds went to `undated` is not dropped: they would stay behind.
    return [
        day
        for day in candidates
        if day not in kept and not _undated_holds(session, OPPORTUNITIES, day)
    ]


class DayInUse(Exception):
    """A day about to be dropped holds a checkpoint that is no longer done with."""


def detach_day(
    session: Session,
    day: date,
    cutoff: Any,
    pace: Callable[[float], None] = lambda took_s: None,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Detach `day`'s partitions from both tables in the caller's transaction, moving what
    their rows counted from the row tallies into the tallies in that same transaction; the
    checkpoints taken.
    `drop_detached` then drops them, after the caller's commit.

    The tallies are summed and added first, under no lock a page commit waits for (the
    rows of a droppable day no longer change), piece by piece, `pace` told how long each
    piece took (worker.db.day_tallies). Then the parents' locks are asked for with
    the short timeout, and under them, for as short a moment as can be, the day is checked
    again (two index reads: a scan resumed meanwhile raises DayInUse) and detached. Raises
    OperationalError (lock timeout) when a lock cannot be had at once. Either way the
    caller rolls back, tallies included, and the day waits for the next try.

    Detached, not dropped: a DROP unlinks the partition's files at commit, while the
    parents' locks are still held (a third of a second for a day of 1,000,000 checkpoints),
    and every page commit would wait that long; a detached table is one no page touches.
    """
    having = _tables_having(session, day)
    counted = day_tallies.counts_of(
        session,
        CHECKPOINTS.table_of(day) if CHECKPOINTS in having else None,
        OPPORTUNITIES.table_of(day) if OPPORTUNITIES in having else None,
        pace,
        clock,
    )
    tallies.add(session, tallies.retirement(counted))
    _lock_timeout(session)
    session.execute(
        text(
            f"LOCK TABLE ONLY {CHECKPOINTS.parent}, ONLY {OPPORTUNITIES.parent}"
            " IN ACCESS EXCLUSIVE MODE"
        )
    )
    if kept_days(session, cutoff, _within(CHECKPOINTS, day)):
        raise DayInUse(f"day {day} keeps a live or recent checkpoint")
    for table in having:
        session.execute(text(f"ALTER TABLE {table.parent} DETACH PARTITION {table.table_of(day)}"))
    # A detach fires no trigger: the day's rows leave the row tallies here. Under the
    # parents' locks, so no page commit holds this backend's tally shard meanwhile.
    row_tallies.forget(session, counted)
    return counted.checkpoints


def detached_tables(session: Session) -> list[str]:
    """Day tables in the partition schemas that belong to no parent: detached by a cleanup
    (their rows tallied) and not dropped yet, because it stopped in between."""
    names = session.scalars(
        text(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = ANY(:schemas) AND c.relkind = 'r' AND c.relname ~ '^d[0-9]{8}$'"
            " AND NOT c.relispartition ORDER BY 1"
        ),
        {"schemas": [table.schema for table in TABLES]},
    )
    return list(names)


def drop_detached(session: Session, table: str) -> None:
    """Drop a detached day table (see `detached_tables`); it locks nothing a page uses."""
    session.execute(text(f"DROP TABLE IF EXISTS {table}"))


def _tables_having(session: Session, day: date) -> list[DayTable]:
    return [table for table in TABLES if day in partitioned_days(session, table)]
