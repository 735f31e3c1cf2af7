"""Retention: delete terminal checkpoints once they are older than the retention, and their
opportunities with them: by dropping whole days of both tables where every checkpoint of
the day is done with (worker.db.opportunity_days), by paced deletes only where not (a scan
that ran longer than the retention keeps its day; `undated` rows have no day of their own).

`cleanup_old_checkpoints` is the one function of worker.db that commits, on purpose and
per batch (its docstring says why); the others run in the caller's transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, select, text, true, tuple_
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from models import RUNNER_CHAIN, ScanCheckpoint, ScanOpportunity
from worker.db import clock as clock_sql
from worker.db import opportunity_days as days_sql
from worker.db import tallies
from worker.db.engine import lift_statement_timeout, rowcount
from worker.domain import validation
from worker.domain.status import TERMINAL_STATUSES

log = logging.getLogger(__name__)
_TERMINAL = [status.value for status in TERMINAL_STATUSES]
# A day's drop that cannot have the parent's lock at once is tried again this many times,
# a pause apart, then left for the next cleanup.
DROP_TRIES = 5
DROP_RETRY_PAUSE_S = 0.5


@dataclass(frozen=True)
class Plan:
    """One cleanup's cutoff (the database's clock, read once), and what its drops did:
    the checkpoints they took, and the days whose drop is left for the next cleanup (their
    rows wait for it rather than being deleted one by one)."""

    cutoff: datetime
    dropped: int = 0
    left: frozenset[date] = frozenset()


def plan_cleanup(session: Session, days: int = 7) -> Plan:
    """Make the coming days' partitions, and read the cleanup's cutoff."""
    cutoff_sql = clock_sql.days_ago(validation.days_of(days))
    try:
        days_sql.make_days_ahead(session)
    except DBAPIError as exc:
        # A lock not had within the timeout, or a row of that very day that reached
        # `undated` a moment ago: the next cleanup makes the day, and meanwhile its rows
        # go to `undated`.
        session.rollback()
        log.warning("retention: could not make the coming days' partitions now: %s", exc)
    cutoff = session.scalar(select(cutoff_sql))
    assert isinstance(cutoff, datetime)
    return Plan(cutoff)


def cleanup_old_checkpoints(
    session: Session,
    days: int = 7,
    batch_size: int = 1000,
    pause_ratio: float = 1.0,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Drop the days whose every checkpoint is terminal and untouched for `days` days, then
    delete the other such checkpoints, paced, in committed batches. The checkpoints gone.

    The one function of this module that commits, on purpose: each day's drop and each
    batch of `batch_size` rows is its own transaction, so no lock and no snapshot outlives
    one, and after each full batch it sleeps `pause_ratio` times as long as the batch took,
    holding nothing. A drop writes a few catalogue records; what a running scan feels of
    the deletes is their write-ahead log (a full-page image of every heap page they touch)
    and the checkpoint it brings on, so they are left only the rows no drop can take, and
    the pause leaves the disk and the cores to the scans' commits. Pending work of the
    caller is committed first, durably.
    """
    session.commit()
    plan = plan_cleanup(session, days)
    session.commit()
    plan = drop_finished_days(session, plan, pause_ratio, sleep=sleep)
    deleted_total = plan.dropped
    while True:
        started = clock()
        deleted = delete_old_checkpoints(session, days, batch_size, plan)
        session.commit()
        deleted_total += deleted
        if deleted < batch_size:
            break
        if pause_ratio > 0:
            sleep((clock() - started) * pause_ratio)
    return deleted_total


def drop_finished_days(
    session: Session,
    plan: Plan,
    pause_ratio: float = 1.0,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Plan:
    """Drop every partitioned day whose checkpoints are all past `plan`'s cutoff: detach it
    in a transaction of its own that tallies its rows, then drop the detached tables; `plan`
    with what was dropped and what was left. The read that tallies a day pauses as the
    deletes do (`pause_ratio` times each piece's time). Commits, like the cleanup it begins."""
    dropped, left = 0, set()

    def pace(took_s: float) -> None:
        if pause_ratio > 0:
            sleep(took_s * pause_ratio)

    _drop_detached(session)  # a cleanup that stopped between detaching and dropping
    for day in days_sql.droppable_days(session, plan.cutoff):
        session.commit()
        for attempt in range(DROP_TRIES):
            try:
                dropped += days_sql.detach_day(session, day, plan.cutoff, pace)
                session.commit()
                _drop_detached(session)
                break
            except days_sql.DayInUse:
                session.rollback()  # resumed meanwhile: its doomed rows go one by one
                break
            except DBAPIError as exc:
                session.rollback()
                if day not in days_sql.partitioned_days(session):
                    break  # a concurrent cleanup dropped it (and tallied it) first
                if attempt + 1 == DROP_TRIES:
                    log.warning("retention: day %s left for the next cleanup: %s", day, exc)
                    left.add(day)
                else:
                    sleep(DROP_RETRY_PAUSE_S)
    session.commit()
    return replace(plan, dropped=plan.dropped + dropped, left=plan.left | left)


def _drop_detached(session: Session) -> None:
    """Drop the detached day tables, each in a transaction of its own."""
    for table in days_sql.detached_tables(session):
        days_sql.drop_detached(session, table)
        session.commit()
    session.commit()


def delete_old_checkpoints(
    session: Session, days: int = 7, batch_size: int = 1000, plan: Plan | None = None
) -> int:
    """Delete up to `batch_size` terminal checkpoints older than `days`, in the caller's
    transaction, with their opportunities, except those of the days `plan` left for the
    next cleanup's drop.

    What the deleted rows counted (pages, items, opportunities deleted here) moves to the
    metric tallies in the same transaction, so the fleet's counters never go backwards
    (a dropped day tallies its own rows as it drops); a batch that finds the end also
    records the cleanup's success there.

    Makes the caller's transaction commit asynchronously (SET LOCAL, so only this one):
    a batch lost to a crash is deleted again by the next cleanup, and its commit then
    waits for no WAL flush. Run it in a transaction of its own. Primary-key order keeps
    concurrent cleanups from waiting on each other; SKIP LOCKED lets a scan being resumed
    right now keep its row.
    """
    # A batch's statements last as long as MARKETSCAN_CLEANUP_BATCH_SIZE makes them: the
    # operator's batch size bounds them, not the statement timeout meant for requests.
    lift_statement_timeout(session)
    cutoff = clock_sql.days_ago(validation.days_of(days)) if plan is None else plan.cutoff
    left = frozenset() if plan is None else plan.left
    day = days_sql.scan_day(ScanCheckpoint.created_at)
    doomed = session.execute(
        select(
            ScanCheckpoint.id,
            ScanCheckpoint.scan_id,
            ScanCheckpoint.runner,
            ScanCheckpoint.page_seq,
            ScanCheckpoint.processed_items,
            ScanCheckpoint.skipped_items,
            day.label("scan_day"),
        )
        .where(ScanCheckpoint.status.in_(_TERMINAL), ScanCheckpoint.updated_at < cutoff)
        .where(day.not_in(left) if left else true())
        .order_by(ScanCheckpoint.id)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    ).all()
    session.execute(text("SET LOCAL synchronous_commit = off"))
    deleted = 0
    if doomed:
        opportunities = _delete_opportunities(
            session, [(row.scan_id, row.scan_day) for row in doomed]
        )
        _retire(session, doomed, opportunities)
        ids = [row.id for row in doomed]
        deleted = rowcount(
            session.execute(delete(ScanCheckpoint).where(ScanCheckpoint.id.in_(ids)))
        )
    if deleted < batch_size:
        tallies.raise_to(session, tallies.CLEANUP_LAST_SUCCESS, clock_sql.unix_now())
    return deleted


def _delete_opportunities(session: Session, scans: list[tuple[Any, date]]) -> int:
    """Delete the opportunities of these (scan_id, scan_day) pairs; how many went."""
    if not scans:
        return 0
    key = tuple_(ScanOpportunity.scan_id, ScanOpportunity.scan_day)
    return rowcount(session.execute(delete(ScanOpportunity).where(key.in_(scans))))


def _retire(session: Session, doomed: Sequence[Any], opportunities: int) -> None:
    """Move what the doomed rows counted into the tallies (the chain's rows only, as the
    live counts read them)."""
    chain = [row for row in doomed if row.runner == RUNNER_CHAIN]
    tallies.add(
        session,
        {
            (tallies.RETIRED_PAGES, ""): sum(row.page_seq for row in chain),
            (tallies.RETIRED_ITEMS, ""): sum(row.processed_items for row in chain),
            (tallies.RETIRED_SKIPPED, ""): sum(row.skipped_items for row in chain),
            (tallies.RETIRED_OPPORTUNITIES, ""): opportunities,
            (tallies.CLEANUP_ROWS_DELETED, ""): len(doomed),
        },
    )


def count_old_checkpoints(session: Session, days: int = 7) -> int:
    """How many rows `cleanup_old_checkpoints(days)` would delete now."""
    cutoff = clock_sql.days_ago(validation.days_of(days))
    return (
        session.scalar(
            select(func.count())
            .select_from(ScanCheckpoint)
            .where(ScanCheckpoint.status.in_(_TERMINAL), ScanCheckpoint.updated_at < cutoff)
        )
        or 0
    )
