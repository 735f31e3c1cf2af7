"""A scan's lifecycle as users drive it: start, pause, resume, cancel.

Every change is a guarded UPDATE from the states that allow it; a guard that matches
nothing is an InvalidTransition naming the scan's actual state.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import RUNNER_CHAIN, ScanCheckpoint, ScanStatus
from worker.db import checkpoints as checkpoint_store
from worker.domain.checkpoint import Checkpoint, scan_id_of
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.errors import CheckpointNotFound, DuplicateScan, InvalidInput, InvalidTransition
from worker.markets.registry import check_market_options
from worker.notify.notifier import get_notifier
from worker.settings import Settings

Publish = Callable[[PageMessage], None]


def start_scan(
    session: Session,
    params: ScanParams,
    settings: Settings,
    publish: Publish,
    scan_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Store a new scan and publish its first page (after the commit). Returns its scan_id.

    The worker's fee and level rule are frozen into the stored params. Idempotent on
    `scan_id`: if that scan exists, nothing is stored and its chain is made sure of.
    """
    check_market_options(params, settings)
    params = params.configured(settings)
    scan_id, token = scan_id or uuid.uuid4(), uuid.uuid4()
    try:
        # INSERT ... ON CONFLICT DO NOTHING: of two racing starts, exactly one inserts.
        checkpoint_store.create_checkpoint(
            session,
            scan_id,
            params.user_id,
            params.operation_type,
            metadata=params.metadata,
            params=params.to_json(),
            lease_token=token,
        )
    except DuplicateScan:
        session.rollback()
        return _ensure_chain(session, scan_id, params, publish)
    session.commit()
    publish(PageMessage(scan_id, token, 0, 0))
    return scan_id


def start_request(params: object, task_id: str | None) -> tuple[ScanParams, uuid.UUID]:
    """The params and scan_id of a start task: its id is the scan's, unless params disagree."""
    task_scan_id = scan_id_of(task_id)
    if isinstance(params, dict) and "scan_id" in params:
        params = dict(params)
        named = scan_id_of(params.pop("scan_id"))
        if named != task_scan_id:
            raise InvalidInput(f"scan_id {named} must equal the start task's id {task_scan_id}")
    return ScanParams.from_request(params), task_scan_id


def _ensure_chain(
    session: Session, scan_id: uuid.UUID, params: ScanParams, publish: Publish
) -> uuid.UUID:
    """A repeated start: refuse other params; republish an in-progress scan at its fence.

    The message carries the row's own fence, so if the chain is alive it is a duplicate
    that the page task drops, and if the chain was lost (a start killed before publishing)
    it is the page that was due.
    """
    row = session.execute(
        select(
            ScanCheckpoint.params,
            ScanCheckpoint.status,
            ScanCheckpoint.lease_token,
            ScanCheckpoint.page_seq,
            ScanCheckpoint.page_offset,
        ).where(ScanCheckpoint.scan_id == scan_id)
    ).one_or_none()
    session.rollback()
    if row is None:  # deleted between the INSERT and this read: an old scan_id reused
        raise CheckpointNotFound(f"scan {scan_id} was deleted while being started again")
    stored = ScanParams.from_json(row.params) if row.params is not None else None
    if stored is None or not stored.same_request(params):
        raise DuplicateScan(f"scan_id {scan_id} is taken by a scan with other params")
    if row.status == ScanStatus.IN_PROGRESS.value and row.lease_token is not None:
        publish(PageMessage(scan_id, row.lease_token, row.page_seq, row.page_offset))
    return scan_id


def pause_scan(session: Session, scan_id: uuid.UUID | str) -> Checkpoint:
    """Stop at the next item boundary, keeping every committed item."""
    return _transition(session, scan_id, {ScanStatus.IN_PROGRESS}, ScanStatus.PAUSED, {})


def cancel_scan(session: Session, scan_id: uuid.UUID | str) -> Checkpoint:
    """Give the scan up for good; the page in flight still commits what it did."""
    return _transition(
        session,
        scan_id,
        {ScanStatus.IN_PROGRESS, ScanStatus.PAUSED, ScanStatus.FAILED},
        ScanStatus.CANCELLED,
        {"lease_expires_at": None, "queued_at": None},
    )


def resume_scan(
    session: Session, scan_id: uuid.UUID | str, settings: Settings, publish: Publish
) -> Checkpoint:
    """Continue a paused or failed scan from its checkpoint under a new lease token."""
    token = uuid.uuid4()
    resumed = _transition(
        session,
        scan_id,
        {ScanStatus.PAUSED, ScanStatus.FAILED},
        ScanStatus.IN_PROGRESS,
        {
            "lease_token": token,
            "lease_owner": None,
            "lease_task_id": None,
            "lease_expires_at": None,
            # Queued: the page is published right after the commit.
            "queued_at": func.now(),
            "error_message": None,
            "page_deliveries": 0,
        },
        chain_only=True,
    )
    # A resumed scan's user sees progress again, even after a failure summary.
    get_notifier().scan_resumed(resumed.scan_id)
    publish(PageMessage(resumed.scan_id, token, resumed.page_seq, resumed.page_offset))
    return resumed


def _transition(
    session: Session,
    scan_id: uuid.UUID | str,
    allowed: Collection[ScanStatus],
    target: ScanStatus,
    values: dict[str, Any],
    *,
    chain_only: bool = False,
) -> Checkpoint:
    """Move the scan from one of `allowed` to `target`; `chain_only`: only a page chain's scan."""
    scan = scan_id_of(scan_id)
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
    if row is None:
        current = checkpoint_store.load_checkpoint(session, scan)
        session.rollback()
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
    checkpoint = Checkpoint.from_row(row)
    session.commit()
    return checkpoint
