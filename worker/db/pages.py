"""Fenced reads and writes of a scan's row by its page tasks.

Every statement matches on (scan_id, lease_token, page_seq, page_offset): a message that
no longer matches the row is stale and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Executable
from sqlalchemy.orm import Session

from worker.db import chain_days, page_sql, rowcount
from worker.db.engine import is_relaxed
from worker.domain.fees import FEE_SOURCE_CODES
from worker.domain.opportunities import Opportunity, percent_hundredths
from worker.domain.page_message import PageMessage
from worker.domain.reference import REFERENCE_CODES


@dataclass(frozen=True)
class ClaimedPage:
    """What a page task needs from the row it just claimed."""

    cursor: str | None
    params: dict[str, Any]
    processed_items: int
    total_items: int | None
    deliveries: int
    user_id: int
    # Where the row stands: the message's own position, or a later page of the slice that
    # this delivery walked on to before its worker died.
    page_seq: int
    page_offset: int
    total_is_lower_bound: bool = False
    # The listings of this page judged by its earlier, committed parts.
    judged_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PageResult:
    """What a page task commits: how far it got and what it found."""

    items_done: int
    page_complete: bool
    next_cursor: str | None
    total_items: int | None
    opportunities: tuple[Opportunity, ...]
    skipped: int = 0
    total_is_lower_bound: bool = False
    # Listings judged no opportunity for want of a reference price.
    unreferenced: int = 0
    # Candidates that failed their level's liquidity minimums.
    illiquid: int = 0
    # Why the walk ended early, stored with the last page (worker.domain.listing.Page).
    note: str | None = None
    # The ids of the listings judged by this part of the page, in order.
    judged_ids: tuple[str, ...] = ()
    # A fresh watch's poll: the whole poll leaves the scan resting until its next poll,
    # this many seconds on (worker.db.fresh_polls), instead of queueing a next page.
    poll_every_seconds: int | None = None

    @property
    def rests(self) -> bool:
        """Whether this commit leaves the scan resting until its next poll."""
        return self.poll_every_seconds is not None and self.page_complete

    @property
    def final(self) -> bool:
        return self.page_complete and self.next_cursor is None


@dataclass(frozen=True)
class Lease:
    """The delivery that keeps a scan running past a commit, and for how long."""

    task_id: str
    seconds: float


class PageStore(Protocol):
    """The fenced reads and writes of a page's row: this module, on PostgreSQL."""

    def claim(
        self,
        session: Session,
        message: PageMessage,
        owner: str,
        task_id: str,
        lease_seconds: float,
        *,
        count_delivery: bool = True,
    ) -> ClaimedPage | None: ...

    def renew(
        self, session: Session, message: PageMessage, task_id: str, lease_seconds: float
    ) -> bool: ...

    def release(self, session: Session, message: PageMessage, task_id: str) -> bool: ...

    def commit_page(
        self,
        session: Session,
        message: PageMessage,
        result: PageResult,
        *,
        keep: Lease | None = None,
    ) -> str | None: ...

    def fail(self, session: Session, message: PageMessage, error_message: str) -> bool: ...

    def current_status(self, session: Session, message: PageMessage) -> str | None: ...


def _fenced(
    statement: Executable, message: PageMessage, **values: Any
) -> tuple[Executable, dict[str, Any]]:
    """`statement` with the message's fence, pruned to its row's day once that is known."""
    fence = {
        "fence_scan_id": message.scan_id,
        "fence_lease_token": message.lease_token,
        "fence_page_seq": message.page_seq,
        "fence_page_offset": message.page_offset,
        **values,
    }
    created_at = chain_days.created_at_of(message.scan_id, message.lease_token)
    if created_at is None:
        return statement, fence
    return page_sql.IN_DAY[statement], {**fence, "fence_created_at": created_at}


def claim(
    session: Session,
    message: PageMessage,
    owner: str,
    task_id: str,
    lease_seconds: float,
    *,
    count_delivery: bool = True,
) -> ClaimedPage | None:
    """Take the page's heartbeat lease; None if the message is stale or a copy of a live one.

    `count_delivery` is False for a retry of a delivery that returned (a database outage):
    only deliveries that started the page and never came back count toward the poison limit.
    """
    connection = _relaxed_connection(session)
    row = connection.execute(
        *_fenced(
            page_sql.CLAIM,
            message,
            owner=owner,
            task_id=task_id,
            lease_seconds=lease_seconds,
            delivery_increment=1 if count_delivery else 0,
        ),
    ).one_or_none()
    if row is None:
        return None
    chain_days.remember(message.scan_id, message.lease_token, row.created_at)
    return ClaimedPage(
        cursor=row.cursor,
        params=row.params or {},
        processed_items=row.processed_items,
        total_items=row.total_items,
        deliveries=row.page_deliveries,
        user_id=row.user_id,
        total_is_lower_bound=row.total_is_lower_bound,
        judged_ids=frozenset(row.page_judged_ids),
        page_seq=row.page_seq,
        page_offset=row.page_offset,
    )


def _relaxed_connection(session: Session) -> Connection:
    """The session's connection, its transaction told not to wait for its WAL flush;
    a session of a relaxed engine is so already, and spends no round trip on it."""
    connection = session.connection()
    if not is_relaxed(session):
        connection.execute(page_sql.RELAXED_COMMIT)
    return connection


def renew(session: Session, message: PageMessage, task_id: str, lease_seconds: float) -> bool:
    """Extend the running page's lease; False if the page is no longer this delivery's."""
    connection = _relaxed_connection(session)
    result = connection.execute(
        *_fenced(page_sql.RENEW, message, task_id=task_id, lease_seconds=lease_seconds)
    )
    return bool(rowcount(result))


def release(session: Session, message: PageMessage, task_id: str) -> bool:
    """Return the page to the queue uncommitted (the caller republishes it); False if stale."""
    result = session.connection().execute(*_fenced(page_sql.RELEASE, message, task_id=task_id))
    return bool(rowcount(result))


def commit_page(
    session: Session,
    message: PageMessage,
    result: PageResult,
    *,
    keep: Lease | None = None,
) -> str | None:
    """Write the page's progress and opportunities; the row's status after, or None if stale.

    With `keep`, a whole page that is not the last leaves the scan running under `keep`'s
    delivery, claimed for its next page; otherwise the next page is queued.
    """
    if keep is not None and (not result.page_complete or result.rests):
        raise ValueError("only a whole page that is not a poll can keep the scan running")
    if result.rests:
        statement = page_sql.COMMIT_POLL
    elif result.final:
        statement = page_sql.COMMIT_LAST
    elif result.page_complete:
        statement = page_sql.COMMIT_PAGE
    else:
        statement = page_sql.COMMIT_PART
    fenced, values = _fenced(
        statement,
        message,
        items_done=result.items_done,
        skipped=result.skipped,
        unreferenced=result.unreferenced,
        illiquid=result.illiquid,
        end_note=result.note,
        page_total=result.total_items,
        page_total_is_lower_bound=result.total_is_lower_bound,
        judged_ids=list(result.judged_ids),
        next_cursor=result.next_cursor,
        new_offset=message.page_offset + result.items_done,
        keep_running=keep is not None and not result.final,
        task_id=None if keep is None else keep.task_id,
        lease_seconds=0 if keep is None else keep.seconds,
        poll_every=result.poll_every_seconds or 1,
    )
    if result.opportunities:
        # One statement stores the row and the finds: a stale fence stores neither.
        fenced = page_sql.WITH_FOUND[fenced]
        values.update(opportunity_columns(result.opportunities))
    committed = session.connection().execute(fenced, values).one_or_none()
    if committed is None:
        return None
    return str(committed.status)


def opportunity_columns(found: Sequence[Opportunity]) -> dict[str, list[Any]]:
    """A page's opportunities as the arrays page_sql.WITH_FOUND and INSERT_FOUND take."""
    return {
        name: [_column_value(one, name) for one in found] for name, _ in page_sql.OPPORTUNITY_ARRAYS
    }


def _column_value(found: Opportunity, name: str) -> Any:
    if name == "reference_kind":
        return None if found.reference_kind is None else REFERENCE_CODES[found.reference_kind]
    if name == "profit_hundredths":
        return percent_hundredths(found.profit_percent)
    if name == "fee_source":
        return None if found.fee_source is None else FEE_SOURCE_CODES[found.fee_source]
    return getattr(found, name)


def fail(session: Session, message: PageMessage, error_message: str) -> bool:
    """Mark the scan failed if this message still holds it; the checkpoint stays resumable."""
    result = session.connection().execute(*_fenced(page_sql.FAIL, message, reason=error_message))
    return bool(rowcount(result))


def current_status(session: Session, message: PageMessage) -> str | None:
    """The row's status if this message still holds the scan, else None."""
    status = session.connection().execute(*_fenced(page_sql.STATUS, message)).scalar_one_or_none()
    return None if status is None else str(status)
