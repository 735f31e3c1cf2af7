"""Beat's watch clock in SQL: the due watches, the compare-and-set that takes a slot, the
pass records, and the passes whose scan a dead beat never started.

Taking a slot is one UPDATE guarded by the watch's old `next_due_at` and `buffered_slot_at`:
of two beats that read the same due watch, exactly one moves it on. Nothing here commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models import ACTIVE_STATUSES, ScanCheckpoint, ScanWatch, WatchPass
from worker.db import tallies
from worker.db.clock import days_ago, seconds
from worker.db.engine import rowcount
from worker.db.watches import owner_allowed, watch_of
from worker.domain.watch import Watch

DUE_LIMIT = 500
PRUNE_BATCH = 1000
_ACTIVE = [status.value for status in ACTIVE_STATUSES]


@dataclass(frozen=True)
class DueWatch:
    """A running watch with a slot due or buffered, and whether its last pass still runs."""

    watch: Watch
    last_pass_running: bool


@dataclass(frozen=True)
class SlotMove:
    """Where a watch goes from the slot state it was read in."""

    next_due_at: datetime
    buffered_slot_at: datetime | None
    skipped: int = 0
    missed: int = 0
    # The pass this move starts, if any.
    slot_at: datetime | None = None
    scan_id: uuid.UUID | None = None


def database_now(session: Session) -> datetime:
    """PostgreSQL's clock: every beat reads slots by the same time."""
    now: datetime | None = session.scalar(select(func.now()))
    assert now is not None
    return now


def due_watches(session: Session, allowed_owners: frozenset[int] = frozenset()) -> list[DueWatch]:
    """Unpaused watches whose next slot is due, or that hold a buffered slot, of the owners
    on the allow-list (of everyone while none is set)."""
    rows = session.execute(
        select(ScanWatch, ScanCheckpoint.status)
        .outerjoin(ScanCheckpoint, ScanCheckpoint.scan_id == ScanWatch.last_scan_id)
        .where(
            ScanWatch.paused.is_(False),
            owner_allowed(allowed_owners),
            (ScanWatch.next_due_at <= func.now()) | ScanWatch.buffered_slot_at.is_not(None),
        )
        .order_by(ScanWatch.next_due_at)
        .limit(DUE_LIMIT)
    )
    return [DueWatch(watch_of(row), status in _ACTIVE) for row, status in rows]


def move(session: Session, watch: Watch, step: SlotMove) -> bool:
    """Take the watch from the slot state it was read in; False if another beat did first.

    A move that starts a pass records it in the same transaction, so a beat that dies
    before starting the scan leaves a pass that the next tick starts (unstarted_passes).
    """
    values: dict[str, object] = {
        "next_due_at": step.next_due_at,
        "buffered_slot_at": step.buffered_slot_at,
        "skipped_slots": ScanWatch.skipped_slots + step.skipped,
        "missed_slots": ScanWatch.missed_slots + step.missed,
        "updated_at": func.now(),
    }
    if step.scan_id is not None:
        values.update(last_scan_id=step.scan_id, last_slot_at=step.slot_at)
    result = session.execute(
        update(ScanWatch)
        .where(
            ScanWatch.id == watch.watch_id,
            ScanWatch.paused.is_(False),
            ScanWatch.next_due_at == watch.next_due_at,
            ScanWatch.buffered_slot_at.is_not_distinct_from(watch.buffered_slot_at),
        )
        .values(**values)
    )
    if rowcount(result) == 0:
        return False
    if step.scan_id is not None and step.slot_at is not None:
        session.execute(
            insert(WatchPass)
            .values(
                scan_id=step.scan_id,
                watch_id=watch.watch_id,
                chat_id=watch.chat_id,
                slot_at=step.slot_at,
            )
            .on_conflict_do_nothing(index_elements=[WatchPass.scan_id])
        )
    # Counted in the move's own transaction: a slot is tallied once, by the beat that won it
    # (pass rows are pruned, so they cannot be the counter). Last, as recovery's tallies are.
    started = int(step.scan_id is not None and step.slot_at is not None)
    tallies.add(
        session,
        {
            (tallies.WATCH_PASSES, tallies.WATCH_STARTED): started,
            (tallies.WATCH_PASSES, tallies.WATCH_SKIPPED): step.skipped,
            (tallies.WATCH_PASSES, tallies.WATCH_MISSED): step.missed,
        },
    )
    return True


def unstarted_passes(session: Session, within_seconds: float) -> list[tuple[Watch, datetime]]:
    """Passes taken in the last `within_seconds` whose scan does not exist: the beat that
    took the slot died before starting it. (Older ones were removed by cleanup.)"""
    rows = session.execute(
        select(ScanWatch, WatchPass.slot_at)
        .join(WatchPass, WatchPass.watch_id == ScanWatch.id)
        .outerjoin(ScanCheckpoint, ScanCheckpoint.scan_id == WatchPass.scan_id)
        .where(
            ScanCheckpoint.id.is_(None),
            WatchPass.created_at > func.now() - seconds(within_seconds),
        )
        .limit(DUE_LIMIT)
    )
    return [(watch_of(row), slot_at) for row, slot_at in rows]


def prune_passes(session: Session, retention_days: int) -> int:
    """Forget up to PRUNE_BATCH pass records older than the scans' retention (their scans
    are deleted by cleanup then); a bounded, indexed DELETE that is cheap when none is."""
    doomed = (
        select(WatchPass.scan_id)
        .where(WatchPass.created_at < days_ago(retention_days))
        .limit(PRUNE_BATCH)
        .scalar_subquery()
    )
    return rowcount(session.execute(delete(WatchPass).where(WatchPass.scan_id.in_(doomed))))
