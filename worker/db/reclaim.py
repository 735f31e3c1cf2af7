"""The SQL of recovery (worker.chain.recovery decides what is orphaned and owns the
transaction): find chain scans whose running lease lapsed or whose page waits queued,
and move one to a new lease token with a compare-and-set on the whole fence.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from models import RUNNER_CHAIN, ScanCheckpoint
from worker.db import clock
from worker.db.engine import rowcount
from worker.domain.status import ScanStatus

_rows = ScanCheckpoint
_CHAIN_IN_PROGRESS = and_(
    _rows.runner == RUNNER_CHAIN, _rows.status == ScanStatus.IN_PROGRESS.value
)
# Running: neither queued nor resting between a fresh watch's polls (worker.db.fresh_polls),
# which holds no lease and waits for beat's fresh clock, not for recovery.
_RUNNING = and_(_rows.queued_at.is_(None), _rows.next_poll_at.is_(None))
_LEASE_LAPSED = clock.lease_lapsed(_rows.lease_expires_at)


@dataclass(frozen=True)
class Candidate:
    """A chain scan's fence as recovery read it; `settled`: queued longer than the grace."""

    id: int
    scan_id: uuid.UUID
    lease_token: uuid.UUID
    lease_owner: str | None
    queued_at: datetime | None
    page_seq: int
    page_offset: int
    settled: bool = False
    # Queued longer than the ledger audit's trust in a `sent` marker (see chain.ledger_audit).
    suspect: bool = False


_FENCE_COLUMNS = select(
    _rows.id,
    _rows.scan_id,
    _rows.lease_token,
    _rows.lease_owner,
    _rows.queued_at,
    _rows.page_seq,
    _rows.page_offset,
)


def running_orphans(session: Session, own_hostname: str | None, limit: int) -> list[Candidate]:
    """Running pages whose lease lapsed (or, with `own_hostname`, that this worker ran in its
    previous life), locked; rows another recoverer holds are skipped."""
    orphaned: ColumnElement[bool] = _LEASE_LAPSED
    if own_hostname is not None:
        orphaned = or_(orphaned, _rows.lease_owner == own_hostname)
    rows = session.execute(
        _FENCE_COLUMNS.where(_CHAIN_IN_PROGRESS, _RUNNING, orphaned)
        .order_by(_rows.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    return [Candidate(**row._mapping) for row in rows]


def queued_pages(
    session: Session,
    grace_seconds: float,
    every: bool,
    after_id: int,
    limit: int,
    suspect_seconds: float | None = None,
) -> list[Candidate]:
    """Queued pages after `after_id`, in id order: those queued longer than the grace, or
    `every` one (a restarting worker looks for those it took); `suspect`: queued longer
    than `suspect_seconds`."""
    settled = clock.older_than(_rows.queued_at, grace_seconds).label("settled")
    candidates = [_CHAIN_IN_PROGRESS, _rows.queued_at.is_not(None), _rows.id > after_id]
    if not every:
        candidates.append(settled)
    columns = _FENCE_COLUMNS.add_columns(settled)
    if suspect_seconds is not None:
        columns = columns.add_columns(
            clock.older_than(_rows.queued_at, suspect_seconds).label("suspect")
        )
    rows = session.execute(columns.where(*candidates).order_by(_rows.id).limit(limit)).all()
    return [Candidate(**row._mapping) for row in rows]


def reclaim(session: Session, candidate: Candidate) -> uuid.UUID | None:
    """A new lease token on the row, if it still is exactly as read (same fence, still
    running or still queued since the same moment); None if someone changed it."""
    still = _RUNNING if candidate.queued_at is None else _rows.queued_at == candidate.queued_at
    token = uuid.uuid4()
    won = rowcount(
        session.execute(
            update(_rows)
            .where(
                _rows.id == candidate.id,
                _rows.lease_token == candidate.lease_token,
                _rows.page_seq == candidate.page_seq,
                _rows.page_offset == candidate.page_offset,
                _CHAIN_IN_PROGRESS,
                still,
            )
            .values(
                lease_token=token,
                lease_owner=None,
                lease_task_id=None,
                lease_expires_at=None,
                # Queued again: the page is published right after the commit.
                queued_at=func.now(),
                recoveries=_rows.recoveries + 1,
                updated_at=func.now(),
            )
        )
    )
    return token if won else None
