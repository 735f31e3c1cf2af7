"""Fenced reads and writes of a scan's row by its page tasks.

Every statement matches on (scan_id, lease_token, page_seq, page_offset): a message that
no longer matches the row is stale and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity, ScanStatus
from worker.db import rowcount
from worker.opportunities import Opportunity
from worker.page_message import PageMessage

# A scan the user paused or cancelled still takes the commit of the page in flight.
_COMMITTABLE = (ScanStatus.IN_PROGRESS.value, ScanStatus.PAUSED.value, ScanStatus.CANCELLED.value)


@dataclass(frozen=True)
class ClaimedPage:
    """What a page task needs from the row it just claimed."""

    cursor: str | None
    params: dict[str, Any]
    processed_items: int
    total_items: int | None
    deliveries: int
    user_id: int


@dataclass(frozen=True)
class PageResult:
    """What a page task commits: how far it got and what it found."""

    items_done: int
    page_complete: bool
    next_cursor: str | None
    total_items: int | None
    opportunities: tuple[Opportunity, ...]

    @property
    def final(self) -> bool:
        return self.page_complete and self.next_cursor is None


def _fence(message: PageMessage) -> ColumnElement[bool]:
    return and_(
        ScanCheckpoint.scan_id == message.scan_id,
        ScanCheckpoint.lease_token == message.lease_token,
        ScanCheckpoint.page_seq == message.page_seq,
        ScanCheckpoint.page_offset == message.page_offset,
    )


def _lease_until(lease_seconds: float) -> ColumnElement[Any]:
    return func.now() + func.make_interval(0, 0, 0, 0, 0, 0, lease_seconds)


def _relaxed_commit(session: Session) -> None:
    # A lost lease renewal is harmless after a database crash: the lease simply expires.
    # Not waiting for the WAL flush keeps the hot path to one durable commit per page.
    session.execute(text("SET LOCAL synchronous_commit = off"))


def claim(
    session: Session, message: PageMessage, owner: str, lease_seconds: float
) -> ClaimedPage | None:
    """Take the lease for this page and count the delivery; None if the message is stale."""
    _relaxed_commit(session)
    row = session.execute(
        update(ScanCheckpoint)
        .where(_fence(message), ScanCheckpoint.status == ScanStatus.IN_PROGRESS.value)
        .values(
            page_deliveries=ScanCheckpoint.page_deliveries + 1,
            lease_owner=owner,
            lease_expires_at=_lease_until(lease_seconds),
        )
        .returning(
            ScanCheckpoint.cursor,
            ScanCheckpoint.params,
            ScanCheckpoint.processed_items,
            ScanCheckpoint.total_items,
            ScanCheckpoint.page_deliveries,
            ScanCheckpoint.user_id,
        )
    ).one_or_none()
    if row is None:
        return None
    return ClaimedPage(
        cursor=row.cursor,
        params=row.params or {},
        processed_items=row.processed_items,
        total_items=row.total_items,
        deliveries=row.page_deliveries,
        user_id=row.user_id,
    )


def renew(session: Session, message: PageMessage, owner: str, lease_seconds: float) -> bool:
    """Extend the lease while the page waits (retries); False if the message went stale."""
    _relaxed_commit(session)
    result = session.execute(
        update(ScanCheckpoint)
        .where(_fence(message), ScanCheckpoint.status == ScanStatus.IN_PROGRESS.value)
        .values(lease_owner=owner, lease_expires_at=_lease_until(lease_seconds))
    )
    return bool(rowcount(result))


def commit_page(
    session: Session,
    message: PageMessage,
    result: PageResult,
    owner: str,
    lease_seconds: float,
) -> str | None:
    """Write the page's progress and opportunities; the row's status after, or None if stale.

    The last page completes the scan in the same statement, so a finished scan is never
    seen in progress with nothing left to do.
    """
    if result.page_complete:
        position = {
            "cursor": result.next_cursor,
            "page_seq": message.page_seq + 1,
            "page_offset": 0,
        }
    else:
        position = {"page_offset": message.page_offset + result.items_done}
    ending: dict[str, Any] = {"lease_expires_at": _lease_until(lease_seconds)}
    if result.final:
        in_progress = ScanCheckpoint.status == ScanStatus.IN_PROGRESS.value
        ending = {
            "status": case((in_progress, ScanStatus.COMPLETED.value), else_=ScanCheckpoint.status),
            "lease_expires_at": None,
        }
    status = session.execute(
        update(ScanCheckpoint)
        .where(_fence(message), ScanCheckpoint.status.in_(_COMMITTABLE))
        .values(
            **position,
            processed_items=ScanCheckpoint.processed_items + result.items_done,
            total_items=func.coalesce(result.total_items, ScanCheckpoint.total_items),
            **ending,
            page_deliveries=0,
            lease_owner=owner,
            timestamp=func.now(),
            updated_at=func.now(),
        )
        .returning(ScanCheckpoint.status)
    ).scalar_one_or_none()
    if status is None:
        return None
    if result.opportunities:
        session.execute(
            insert(ScanOpportunity)
            .values(
                [
                    {
                        "scan_id": message.scan_id,
                        "page_seq": message.page_seq,
                        "item_id": found.item_id,
                        "title": found.title,
                        "price_cents": found.price_cents,
                        "reference_price_cents": found.reference_price_cents,
                        "fee_cents": found.fee_cents,
                        "profit_cents": found.profit_cents,
                        "profit_percent": found.profit_percent,
                    }
                    for found in result.opportunities
                ]
            )
            .on_conflict_do_nothing(index_elements=["scan_id", "item_id"])
        )
    return str(status)


def fail(session: Session, message: PageMessage, error_message: str) -> bool:
    """Mark the scan failed if this message still holds it; the checkpoint stays resumable."""
    result = session.execute(
        update(ScanCheckpoint)
        .where(_fence(message), ScanCheckpoint.status == ScanStatus.IN_PROGRESS.value)
        .values(
            status=ScanStatus.FAILED.value,
            error_message=error_message,
            lease_expires_at=None,
            updated_at=func.now(),
        )
    )
    return bool(rowcount(result))


def current_status(session: Session, message: PageMessage) -> str | None:
    """The row's status if this message still holds the scan, else None."""
    status = session.scalar(select(ScanCheckpoint.status).where(_fence(message)))
    return None if status is None else str(status)
