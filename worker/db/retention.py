"""Retention: delete terminal checkpoints (and, by cascade, their opportunities) once they
are older than the retention, paced so running scans do not feel it.

`cleanup_old_checkpoints` is the one function of worker.db that commits, on purpose and
per batch (its docstring says why); the others run in the caller's transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from models import RUNNER_CHAIN, ScanCheckpoint, ScanOpportunity
from worker.db import clock as clock_sql
from worker.db import tallies
from worker.db.engine import rowcount
from worker.domain import validation as v
from worker.domain.status import TERMINAL_STATUSES

_TERMINAL = [status.value for status in TERMINAL_STATUSES]


def cleanup_old_checkpoints(
    session: Session,
    days: int = 7,
    batch_size: int = 1000,
    pause_ratio: float = 1.0,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Delete terminal checkpoints untouched for `days` days, paced, in committed batches.

    The one function of this module that commits, on purpose: each batch of `batch_size`
    rows is its own transaction, so no lock and no snapshot outlives a batch, and after
    each full batch it sleeps `pause_ratio` times as long as the batch took, holding
    nothing. What a running scan feels is the deletes' write-ahead log (a full-page image
    of every heap page they touch) and the checkpoint it brings on; the pause leaves the
    disk and the cores to the scans' commits. Pending work of the caller is committed
    first, durably.
    """
    session.commit()
    deleted_total = 0
    while True:
        started = clock()
        deleted = delete_old_checkpoints(session, days, batch_size)
        session.commit()
        deleted_total += deleted
        if deleted < batch_size:
            return deleted_total
        if pause_ratio > 0:
            sleep((clock() - started) * pause_ratio)


def delete_old_checkpoints(session: Session, days: int = 7, batch_size: int = 1000) -> int:
    """Delete up to `batch_size` terminal checkpoints older than `days`, in the caller's
    transaction; their opportunities go with them (ON DELETE CASCADE).

    What the deleted rows counted (pages, items, opportunities) moves to the metric
    tallies in the same transaction, so the fleet's counters never go backwards; a batch
    that finds the end also records the cleanup's success there.

    Makes the caller's transaction commit asynchronously (SET LOCAL, so only this one):
    a batch lost to a crash is deleted again by the next cleanup, and its commit then
    waits for no WAL flush. Run it in a transaction of its own. Primary-key order keeps
    concurrent cleanups from waiting on each other; SKIP LOCKED lets a scan being resumed
    right now keep its row.
    """
    cutoff = clock_sql.days_ago(v.days_of(days))
    doomed = session.execute(
        select(
            ScanCheckpoint.id,
            ScanCheckpoint.scan_id,
            ScanCheckpoint.runner,
            ScanCheckpoint.page_seq,
            ScanCheckpoint.processed_items,
            ScanCheckpoint.skipped_items,
        )
        .where(ScanCheckpoint.status.in_(_TERMINAL), ScanCheckpoint.updated_at < cutoff)
        .order_by(ScanCheckpoint.id)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    ).all()
    session.execute(text("SET LOCAL synchronous_commit = off"))
    deleted = 0
    if doomed:
        _retire(session, doomed)
        ids = [row.id for row in doomed]
        deleted = rowcount(
            session.execute(delete(ScanCheckpoint).where(ScanCheckpoint.id.in_(ids)))
        )
    if deleted < batch_size:
        tallies.raise_to(session, tallies.CLEANUP_LAST_SUCCESS, clock_sql.unix_now())
    return deleted


def _retire(session: Session, doomed: Sequence[Any]) -> None:
    """Move what the doomed rows counted into the tallies (the chain's rows only, as the
    live counts read them)."""
    chain = [row for row in doomed if row.runner == RUNNER_CHAIN]
    opportunities = session.scalar(
        select(func.count())
        .select_from(ScanOpportunity)
        .where(ScanOpportunity.scan_id.in_([row.scan_id for row in doomed]))
    )
    tallies.add(
        session,
        {
            (tallies.RETIRED_PAGES, ""): sum(row.page_seq for row in chain),
            (tallies.RETIRED_ITEMS, ""): sum(row.processed_items for row in chain),
            (tallies.RETIRED_SKIPPED, ""): sum(row.skipped_items for row in chain),
            (tallies.RETIRED_OPPORTUNITIES, ""): int(opportunities or 0),
            (tallies.CLEANUP_ROWS_DELETED, ""): len(doomed),
        },
    )


def count_old_checkpoints(session: Session, days: int = 7) -> int:
    """How many rows `cleanup_old_checkpoints(days)` would delete now."""
    cutoff = clock_sql.days_ago(v.days_of(days))
    return (
        session.scalar(
            select(func.count())
            .select_from(ScanCheckpoint)
            .where(ScanCheckpoint.status.in_(_TERMINAL), ScanCheckpoint.updated_at < cutoff)
        )
        or 0
    )
