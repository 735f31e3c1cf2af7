"""The days of `scan_opportunities`: one partition per UTC day its scans were created, made
ahead of time, dropped whole once no checkpoint of that day is left.

A scan's `scan_day` is the UTC date of its checkpoint's `created_at`, so every row of one
scan lies in one partition and a day is done with as soon as its checkpoints are gone:
dropping it writes a few catalogue records to the WAL instead of one record (and a page
image) per row. The partitions live in schema `scan_opportunity_days`, out of the models'
sight; a default partition (`undated`) takes the rows of a day nobody made ahead (cleanup
did not run for a week), which leave with their checkpoints like any other.

Nothing here commits. DDL on a partition takes an ACCESS EXCLUSIVE lock on the parent table
for a moment; it is asked for with a short lock timeout, so a page commit waits at most
that long behind it, and a day that cannot be had now is simply left for the next cleanup.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, text
from sqlalchemy.orm import Session

from models import ScanOpportunity
from worker.db import tallies
from worker.domain.status import TERMINAL_STATUSES

SCHEMA = "scan_opportunity_days"
UNDATED = "undated"
# Days made ahead, so a scan started before the next cleanup finds its day.
AHEAD_DAYS = 7
# How long DDL may wait for the parent's lock (and so how long a page commit may wait
# behind that DDL).
LOCK_TIMEOUT_MS = 100
_PARENT = ScanOpportunity.__tablename__
_TERMINAL = [status.value for status in TERMINAL_STATUSES]


def scan_day(created_at: Any) -> ColumnElement[Any]:
    """The partition key of a scan created at `created_at`: its UTC date."""
    return func.date(func.timezone("UTC", created_at))


def table_of(day: date) -> str:
    return f"{SCHEMA}.d{day:%Y%m%d}"


def partitioned_days(session: Session) -> list[date]:
    """The days that have a partition of their own, oldest first."""
    names = session.scalars(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE i.inhparent = CAST(:parent AS regclass) AND n.nspname = :schema"
            " AND c.relname ~ '^d[0-9]{8}$'"
        ),
        {"parent": _PARENT, "schema": SCHEMA},
    )
    return sorted(datetime.strptime(name[1:], "%Y%m%d").date() for name in names)


def today(session: Session) -> date:
    """The database's UTC date (never a worker's clock)."""
    day = session.scalar(text("SELECT (now() AT TIME ZONE 'UTC')::date"))
    assert isinstance(day, date)
    return day


def make_days_ahead(session: Session, ahead: int = AHEAD_DAYS) -> list[date]:
    """Make the partitions of today and the next `ahead` days that are missing; the days
    made. A day whose rows already went to `undated` is left there (a partition for it
    would have to move them)."""
    first = today(session)
    have = set(partitioned_days(session))
    made = []
    for offset in range(ahead + 1):
        day = first + timedelta(days=offset)
        if day not in have and not _undated_holds(session, day):
            make_day(session, day)
            made.append(day)
    return made


def make_day(session: Session, day: date) -> None:
    """Make `day`'s partition (which must not exist yet)."""
    _lock_timeout(session)
    session.execute(
        text(
            f"CREATE TABLE {table_of(day)} PARTITION OF {_PARENT}"
            f" FOR VALUES FROM ('{day.isoformat()}')"
            f" TO ('{(day + timedelta(days=1)).isoformat()}')"
        )
    )


def _undated_holds(session: Session, day: date) -> bool:
    return bool(
        session.scalar(
            text(f"SELECT EXISTS (SELECT 1 FROM {SCHEMA}.{UNDATED} WHERE scan_day = :day)"),
            {"day": day},
        )
    )


def _lock_timeout(session: Session) -> None:
    session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'"))


def kept_days(session: Session, doomed_before: Any) -> set[date]:
    """The days that keep a checkpoint after a cleanup deleting the terminal rows last
    updated before `doomed_before`: their partitions stay, so their doomed scans' rows
    must be deleted one by one (a scan that ran longer than the retention keeps its day)."""
    kept = session.scalars(
        text(
            f"SELECT DISTINCT {_day_sql()} FROM scan_checkpoints"
            " WHERE NOT (status = ANY(:terminal) AND updated_at < :before)"
        ),
        {"terminal": _TERMINAL, "before": doomed_before},
    )
    return set(kept)


def _day_sql() -> str:
    return "(created_at AT TIME ZONE 'UTC')::date"


def droppable_days(session: Session) -> list[date]:
    """Partitioned days before yesterday with no checkpoint left: nothing can write to
    them any more (a scan's rows go to its creation day, and scans are created now)."""
    before = today(session) - timedelta(days=1)
    candidates = [day for day in partitioned_days(session) if day < before]
    if not candidates:
        return []
    remaining = set(
        session.scalars(
            text(
                f"SELECT DISTINCT {_day_sql()} FROM scan_checkpoints"
                f" WHERE created_at < CAST(:before AS timestamp) AT TIME ZONE 'UTC'"
            ),
            {"before": before},
        )
    )
    return [day for day in candidates if day not in remaining]


def drop_day(session: Session, day: date) -> int:
    """Drop `day`'s partition in the caller's transaction, moving its row count into the
    retired-opportunities tally in that same transaction; the rows it held.

    The share lock on the partition keeps its count exact up to the drop. Raises
    OperationalError (lock timeout) when the parent's lock cannot be had at once: the
    caller rolls back, and the day waits for the next try.
    """
    table = table_of(day)
    session.execute(text(f"LOCK TABLE {table} IN SHARE MODE"))
    rows = int(session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
    tallies.add(session, {(tallies.RETIRED_OPPORTUNITIES, ""): rows})
    _lock_timeout(session)
    session.execute(text(f"DROP TABLE {table}"))
    return rows
