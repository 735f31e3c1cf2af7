"""A scan's lifecycle as users drive it: start, pause, resume, cancel.

Every change is a guarded UPDATE from the states the transition table allows
(worker.db.scans); a guard that matches nothing is an InvalidTransition naming the scan's
actual state. These use cases own their transactions.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from worker.db import Session
from worker.db import checkpoints as checkpoint_store
from worker.db import scans as scans_db
from worker.domain.checkpoint import Checkpoint
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.domain.status import ScanStatus
from worker.domain.validation import scan_id_of
from worker.errors import CheckpointNotFound, DuplicateScan, InvalidInput
from worker.markets.registry import check_market_options
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
        # PostgreSQL keeps a scan id to one row: of two racing starts exactly one inserts,
        # the other waits for it and is a DuplicateScan.
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
    row = scans_db.stored_start(session, scan_id)
    session.rollback()
    if row is None:  # deleted between the INSERT and this read: an old scan_id reused
        raise CheckpointNotFound(f"scan {scan_id} was deleted while being started again")
    stored = ScanParams.from_json(row.params) if row.params is not None else None
    if stored is None or not stored.same_request(params):
        raise DuplicateScan(f"scan_id {scan_id} is taken by a scan with other params")
    if row.status is ScanStatus.IN_PROGRESS and row.lease_token is not None:
        publish(PageMessage(scan_id, row.lease_token, row.page_seq, row.page_offset))
    return scan_id


def pause_scan(session: Session, scan_id: uuid.UUID | str) -> Checkpoint:
    """Stop at the next item boundary, keeping every committed item."""
    return _transition(session, scan_id, ScanStatus.PAUSED, {})


def cancel_scan(session: Session, scan_id: uuid.UUID | str) -> Checkpoint:
    """Give the scan up for good; the page in flight still commits what it did."""
    return _transition(
        session, scan_id, ScanStatus.CANCELLED, {"lease_expires_at": None, "queued_at": None}
    )


def resume_scan(
    session: Session,
    scan_id: uuid.UUID | str,
    settings: Settings,
    publish: Publish,
    on_resumed: Callable[[uuid.UUID], None] | None = None,
) -> Checkpoint:
    """Continue a paused or failed scan from its checkpoint under a new lease token.

    `on_resumed` hears of the resume after its commit and before its page is published:
    the client passes the notifier's, so the user sees progress again.
    """
    token = uuid.uuid4()
    resumed = _transition(
        session,
        scan_id,
        ScanStatus.IN_PROGRESS,
        {
            "lease_token": token,
            "lease_owner": None,
            "lease_task_id": None,
            "lease_expires_at": None,
            # Queued: the page is published right after the commit.
            "queued_at": scans_db.NOW,
            "error_message": None,
            "page_deliveries": 0,
        },
        chain_only=True,
    )
    if on_resumed is not None:
        on_resumed(resumed.scan_id)
    publish(PageMessage(resumed.scan_id, token, resumed.page_seq, resumed.page_offset))
    return resumed


def _transition(
    session: Session,
    scan_id: uuid.UUID | str,
    target: ScanStatus,
    values: dict[str, Any],
    *,
    chain_only: bool = False,
) -> Checkpoint:
    """Move the scan to `target` as the transition table allows, and commit."""
    try:
        checkpoint = scans_db.transition(
            session, scan_id_of(scan_id), target, values, chain_only=chain_only
        )
    except Exception:
        session.rollback()
        raise
    session.commit()
    return checkpoint
