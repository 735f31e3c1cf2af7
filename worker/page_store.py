"""Fenced reads and writes of a scan's row by its page tasks.

Every statement matches on (scan_id, lease_token, page_seq, page_offset): a message that
no longer matches the row is stale and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Float,
    Integer,
    Table,
    Text,
    Uuid,
    and_,
    bindparam,
    case,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
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


# The hot path runs the same few statements on every page. They are built once, on the
# tables (not the ORM entities) and with bound parameters, so SQLAlchemy compiles each one
# once per process instead of once per page.
_rows = cast(Table, ScanCheckpoint.__table__)
_FENCE = and_(
    _rows.c.scan_id == bindparam("fence_scan_id"),
    _rows.c.lease_token == bindparam("fence_lease_token"),
    _rows.c.page_seq == bindparam("fence_page_seq"),
    _rows.c.page_offset == bindparam("fence_page_offset"),
)
_IN_PROGRESS = _rows.c.status == ScanStatus.IN_PROGRESS.value
_LEASE_UNTIL = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, bindparam("lease_seconds"))
# A lost lease renewal is harmless after a database crash: the lease simply expires.
# Not waiting for its WAL flush keeps the hot path to one durable commit per page.
_RELAXED_COMMIT = text("SET LOCAL synchronous_commit = off")

_CLAIM = (
    update(_rows)
    .where(_FENCE, _IN_PROGRESS)
    .values(
        page_deliveries=_rows.c.page_deliveries + 1,
        lease_owner=bindparam("owner"),
        lease_expires_at=_LEASE_UNTIL,
    )
    .returning(
        _rows.c.cursor,
        _rows.c.params,
        _rows.c.processed_items,
        _rows.c.total_items,
        _rows.c.page_deliveries,
        _rows.c.user_id,
    )
)
_RENEW = (
    update(_rows)
    .where(_FENCE, _IN_PROGRESS)
    .values(lease_owner=bindparam("owner"), lease_expires_at=_LEASE_UNTIL)
)
_PROGRESS = {
    "processed_items": _rows.c.processed_items + bindparam("items_done"),
    "total_items": func.coalesce(bindparam("page_total", type_=Integer), _rows.c.total_items),
    "page_deliveries": 0,
    "lease_owner": bindparam("owner"),
    "timestamp": func.now(),
    "updated_at": func.now(),
}
_COMMIT = update(_rows).where(_FENCE, _rows.c.status.in_(_COMMITTABLE))
# Part of a page (drained, paused): same page, further offset.
_COMMIT_PART = _COMMIT.values(
    page_offset=bindparam("new_offset"), lease_expires_at=_LEASE_UNTIL, **_PROGRESS
).returning(_rows.c.status)
# A whole page with more to come: next cursor, next page.
_COMMIT_PAGE = _COMMIT.values(
    cursor=bindparam("next_cursor"),
    page_seq=_rows.c.page_seq + 1,
    page_offset=0,
    lease_expires_at=_LEASE_UNTIL,
    **_PROGRESS,
).returning(_rows.c.status)
# The last page completes the scan in the same statement, so a finished scan is never
# seen in progress with nothing left to do (a paused or cancelled one keeps its status).
_COMMIT_LAST = _COMMIT.values(
    cursor=None,
    page_seq=_rows.c.page_seq + 1,
    page_offset=0,
    status=case((_IN_PROGRESS, ScanStatus.COMPLETED.value), else_=_rows.c.status),
    lease_expires_at=None,
    **_PROGRESS,
).returning(_rows.c.status)
# One statement and one round trip for a page's opportunities, whatever their number: the
# columns travel as arrays and unnest() zips them back into rows.
_OPPORTUNITY_ARRAYS = (
    ("item_id", Text), ("title", Text), ("price_cents", BigInteger),
    ("reference_price_cents", BigInteger), ("fee_cents", BigInteger),
    ("profit_cents", BigInteger), ("profit_percent", Float),
)  # fmt: skip
_INSERT_FOUND = text(
    f"INSERT INTO {ScanOpportunity.__tablename__} (scan_id, page_seq, "
    + ", ".join(name for name, _ in _OPPORTUNITY_ARRAYS)
    + ") SELECT :scan_id, :page_seq, * FROM unnest("
    + ", ".join(f":{name}" for name, _ in _OPPORTUNITY_ARRAYS)
    + ") ON CONFLICT (scan_id, item_id) DO NOTHING"
).bindparams(
    bindparam("scan_id", type_=Uuid),
    bindparam("page_seq", type_=Integer),
    *(bindparam(name, type_=ARRAY(kind)) for name, kind in _OPPORTUNITY_ARRAYS),
)
_FAIL = (
    update(_rows)
    .where(_FENCE, _IN_PROGRESS)
    .values(
        status=ScanStatus.FAILED.value,
        error_message=bindparam("reason"),
        lease_expires_at=None,
        updated_at=func.now(),
    )
)
_STATUS = select(_rows.c.status).where(_FENCE)


def _fenced(message: PageMessage, **values: Any) -> dict[str, Any]:
    return {
        "fence_scan_id": message.scan_id,
        "fence_lease_token": message.lease_token,
        "fence_page_seq": message.page_seq,
        "fence_page_offset": message.page_offset,
        **values,
    }


def claim(
    session: Session, message: PageMessage, owner: str, lease_seconds: float
) -> ClaimedPage | None:
    """Take the lease for this page and count the delivery; None if the message is stale."""
    connection = session.connection()
    connection.execute(_RELAXED_COMMIT)
    row = connection.execute(
        _CLAIM, _fenced(message, owner=owner, lease_seconds=lease_seconds)
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
    connection = session.connection()
    connection.execute(_RELAXED_COMMIT)
    result = connection.execute(_RENEW, _fenced(message, owner=owner, lease_seconds=lease_seconds))
    return bool(rowcount(result))


def commit_page(
    session: Session,
    message: PageMessage,
    result: PageResult,
    owner: str,
    lease_seconds: float,
) -> str | None:
    """Write the page's progress and opportunities; the row's status after, or None if stale."""
    if result.final:
        statement = _COMMIT_LAST
    elif result.page_complete:
        statement = _COMMIT_PAGE
    else:
        statement = _COMMIT_PART
    connection = session.connection()
    status = connection.execute(
        statement,
        _fenced(
            message,
            owner=owner,
            lease_seconds=lease_seconds,
            items_done=result.items_done,
            page_total=result.total_items,
            next_cursor=result.next_cursor,
            new_offset=message.page_offset + result.items_done,
        ),
    ).scalar_one_or_none()
    if status is None:
        return None
    if result.opportunities:
        columns = {
            name: [getattr(found, name) for found in result.opportunities]
            for name, _ in _OPPORTUNITY_ARRAYS
        }
        connection.execute(
            _INSERT_FOUND, {"scan_id": message.scan_id, "page_seq": message.page_seq, **columns}
        )
    return str(status)


def fail(session: Session, message: PageMessage, error_message: str) -> bool:
    """Mark the scan failed if this message still holds it; the checkpoint stays resumable."""
    result = session.connection().execute(_FAIL, _fenced(message, reason=error_message))
    return bool(rowcount(result))


def current_status(session: Session, message: PageMessage) -> str | None:
    """The row's status if this message still holds the scan, else None."""
    status = session.connection().execute(_STATUS, _fenced(message)).scalar_one_or_none()
    return None if status is None else str(status)
