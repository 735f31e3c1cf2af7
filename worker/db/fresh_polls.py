"""The SQL of fresh watches' polls: the due polls beat's fresh clock publishes, and the
owner's pause, resume and removal of a fresh watch acting on its one long-lived scan.

A fresh scan rests between polls: in progress, no lease, no queued message, `next_poll_at`
set by its last poll's commit (worker.db.page_sql.COMMIT_POLL). Taking a due poll moves the
row to queued in one guarded UPDATE, so of two beats one publishes it; a beat that dies
before its publish leaves a queued page with no ledger marker, which recovery republishes.
Nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy import ColumnElement, and_, func, select, true, update
from sqlalchemy.orm import Session

from models import RUNNER_CHAIN, ScanCheckpoint
from worker.db.engine import rowcount
from worker.domain.page_message import PageMessage
from worker.domain.status import ScanStatus

_rows = ScanCheckpoint
_RESTING = and_(
    _rows.runner == RUNNER_CHAIN,
    _rows.status == ScanStatus.IN_PROGRESS.value,
    _rows.queued_at.is_(None),
    _rows.next_poll_at.is_not(None),
)


def _owner_allowed(allowed_owners: frozenset[int]) -> ColumnElement[bool]:
    # A watch's scan is its owner's (user_id), as worker.db.watches.owner_allowed.
    return true() if not allowed_owners else _rows.user_id.in_(sorted(allowed_owners))


# Polls due at one tick; the rest are taken at the next.
DUE_LIMIT = 500


def take_due_polls(
    session: Session,
    publisher_host: str,
    allowed_owners: frozenset[int] = frozenset(),
    limit: int = DUE_LIMIT,
) -> list[PageMessage]:
    """Queue the resting scans whose next poll is due, and return their page messages.

    While an allow-list is set, the scans of users not on it are not polled: removed from
    the bot, an owner no longer spends the fleet's request budget.
    """
    due = (
        select(_rows.id, _rows.created_at)
        .where(_RESTING, _rows.next_poll_at <= func.now(), _owner_allowed(allowed_owners))
        .order_by(_rows.next_poll_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .subquery()
    )
    rows = session.execute(
        update(_rows)
        .where(_rows.id == due.c.id, _rows.created_at == due.c.created_at, _RESTING)
        .values(
            queued_at=func.now(),
            next_poll_at=None,
            lease_owner=publisher_host,
            updated_at=func.now(),
        )
        .returning(_rows.scan_id, _rows.lease_token, _rows.page_seq, _rows.page_offset)
    ).all()
    return [
        PageMessage(row.scan_id, row.lease_token, row.page_seq, row.page_offset)
        for row in rows
        if row.lease_token is not None
    ]


def pause_scan(session: Session, scan_id: uuid.UUID) -> bool:
    """Pause a fresh watch's scan; a poll in flight commits what it judged, then stops."""
    return _move(session, scan_id, ScanStatus.IN_PROGRESS, ScanStatus.PAUSED, {})


def resume_scan(session: Session, scan_id: uuid.UUID) -> bool:
    """Resume a paused fresh scan: it rests, due now, and beat's fresh clock polls it from
    its watermark (nothing created meanwhile is missed, within the gap bound)."""
    values = {"next_poll_at": func.now(), "queued_at": None, "lease_task_id": None}
    return _move(session, scan_id, ScanStatus.PAUSED, ScanStatus.IN_PROGRESS, values)


def cancel_scan(session: Session, scan_id: uuid.UUID) -> bool:
    """End a removed fresh watch's scan; its finds stay until retention."""
    guard = [ScanStatus.IN_PROGRESS.value, ScanStatus.PAUSED.value]
    result = session.execute(
        update(_rows)
        .where(_rows.scan_id == scan_id, _rows.status.in_(guard))
        .values(status=ScanStatus.CANCELLED.value, next_poll_at=None, updated_at=func.now())
    )
    return rowcount(result) == 1


def _move(
    session: Session,
    scan_id: uuid.UUID,
    source: ScanStatus,
    target: ScanStatus,
    values: Mapping[str, object],
) -> bool:
    result = session.execute(
        update(_rows)
        .where(_rows.scan_id == scan_id, _rows.status == source.value)
        .values(status=target.value, updated_at=func.now(), **values)
    )
    return rowcount(result) == 1
