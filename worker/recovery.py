"""Recovery: give orphaned scans a new lease token and publish the page they are due.

A scan is orphaned when its lease expired (its worker died, or Redis lost the message) or,
at a worker's start, when that very worker held it in a previous life. Reclaiming is a
compare-and-set of the lease token under SKIP LOCKED, so concurrent recoverers never both
win, and the old chain's messages are fenced off by the new token.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanStatus
from worker.db import rowcount
from worker.page_message import PageMessage
from worker.scans import Publish

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reclaimed:
    scan_id: uuid.UUID
    old_owner: str | None
    message: PageMessage


def recover(
    session: Session,
    publish: Publish,
    lease_seconds: float,
    *,
    own_hostname: str | None = None,
    limit: int = 1000,
) -> list[Reclaimed]:
    """Reclaim orphaned in-progress scans and publish their due page, after the commit.

    With `own_hostname`, also reclaims that worker's scans whatever their lease says.
    """
    orphaned = or_(
        ScanCheckpoint.lease_expires_at.is_(None),
        ScanCheckpoint.lease_expires_at < func.now(),
    )
    if own_hostname is not None:
        orphaned = or_(orphaned, ScanCheckpoint.lease_owner == own_hostname)
    rows = session.execute(
        select(
            ScanCheckpoint.id,
            ScanCheckpoint.scan_id,
            ScanCheckpoint.lease_token,
            ScanCheckpoint.lease_owner,
            ScanCheckpoint.page_seq,
            ScanCheckpoint.page_offset,
        )
        .where(ScanCheckpoint.status == ScanStatus.IN_PROGRESS.value, orphaned)
        .order_by(ScanCheckpoint.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    reclaimed: list[Reclaimed] = []
    for row in rows:
        token = uuid.uuid4()
        won = rowcount(
            session.execute(
                update(ScanCheckpoint)
                .where(ScanCheckpoint.id == row.id, ScanCheckpoint.lease_token == row.lease_token)
                .values(
                    lease_token=token,
                    lease_owner=None,
                    lease_expires_at=func.now()
                    + func.make_interval(0, 0, 0, 0, 0, 0, lease_seconds),
                    recoveries=ScanCheckpoint.recoveries + 1,
                    updated_at=func.now(),
                )
            )
        )
        if won:
            message = PageMessage(row.scan_id, token, row.page_seq, row.page_offset)
            reclaimed.append(Reclaimed(row.scan_id, row.lease_owner, message))
    session.commit()
    for item in reclaimed:
        publish(item.message)
        log.warning(
            "recovered scan %s from owner %s at page %d offset %d",
            item.scan_id,
            item.old_owner,
            item.message.page_seq,
            item.message.page_offset,
        )
    return reclaimed
