"""Status changes users ask for (pause, cancel, resume), as guarded UPDATEs whose guards
come from the one transition table (worker.domain.status), and the read a repeated start
needs. Nothing here commits: the use case that calls it owns the transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import RUNNER_CHAIN, ScanCheckpoint
from worker.db.checkpoints import load_checkpoint
from worker.domain.checkpoint import Checkpoint
from worker.domain.status import ScanStatus, sources_of
from worker.errors import CheckpointNotFound, InvalidTransition

# A queued page's clock starts at the commit that queues it (worker.chain.recovery).
NOW = func.now()


def transition(
    session: Session,
    scan: uuid.UUID,
    target: ScanStatus,
    values: dict[str, Any],
    *,
    chain_only: bool = False,
) -> Checkpoint:
    """Move the scan to `target` from a status the table allows, setting `values` too.

    `chain_only`: only a scan the page chain runs (not the seed API's own loop). Raises
    CheckpointNotFound, or InvalidTransition naming the scan's actual status.
    """
    allowed = sources_of(target)
    guards = [
        ScanCheckpoint.scan_id == scan,
        ScanCheckpoint.status.in_([status.value for status in allowed]),
    ]
    if chain_only:
        guards.append(ScanCheckpoint.runner == RUNNER_CHAIN)
    row = session.execute(
        update(ScanCheckpoint)
        .where(*guards)
        .values(status=target.value, updated_at=func.now(), **values)
        .returning(ScanCheckpoint)
    ).scalar_one_or_none()
    if row is not None:
        return Checkpoint.from_row(row)
    current = load_checkpoint(session, scan)
    if current is None:
        raise CheckpointNotFound(f"no scan with scan_id {scan}")
    if chain_only and current.status in allowed:
        raise InvalidTransition(
            f"scan {scan} is run by its caller's own loop (StateManager), not by the "
            f"page chain; only a scan started with `marketscan scan start` or the "
            f"client can become {target.value} here"
        )
    allowed_names = " or ".join(sorted(status.value for status in allowed))
    raise InvalidTransition(
        f"scan {scan} is {current.status.value}; only a scan that is {allowed_names} "
        f"can become {target.value}"
    )


@dataclass(frozen=True)
class StoredStart:
    """What a repeated start needs of the scan already stored under its id."""

    params: dict[str, Any] | None
    status: ScanStatus
    lease_token: uuid.UUID | None
    page_seq: int
    page_offset: int


def stored_start(session: Session, scan: uuid.UUID) -> StoredStart | None:
    row = session.execute(
        select(
            ScanCheckpoint.params,
            ScanCheckpoint.status,
            ScanCheckpoint.lease_token,
            ScanCheckpoint.page_seq,
            ScanCheckpoint.page_offset,
        ).where(ScanCheckpoint.scan_id == scan)
    ).one_or_none()
    if row is None:
        return None
    return StoredStart(
        row.params, ScanStatus(row.status), row.lease_token, row.page_seq, row.page_offset
    )
