"""The alert follower in SQL: passes with committed finds not yet alerted, the next page of
them, and the compare-and-set that moves a pass's cursor past finds Telegram took.

Only committed rows are ever read (invariant 10). The cursor (`alerted_through_id`) moves
only after the send, from the value it was read at: a send that failed, or a beat that died
before its record, leaves the finds after the cursor to be sent again. Nothing here commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from models import ACTIVE_STATUSES, ScanCheckpoint, ScanOpportunity, ScanWatch, WatchPass
from worker.db.clock import seconds
from worker.db.engine import rowcount
from worker.db.scan_queries import judged_fee_and_profit, of_scan
from worker.db.watches import owner_allowed
from worker.domain.alert import Find, Judging
from worker.domain.fees import FEE_SOURCE_NAMES
from worker.domain.reference import REFERENCE_NAMES
from worker.domain.scan_params import frozen_fee

PENDING_LIMIT = 200
# A pass is followed while it runs and for this long after: later finds are no news, and
# the follower's query stays on the few passes that can still have any.
FOLLOW_AFTER_END_SECONDS = 900
# A fresh watch's scan params say so: its one pass follows the market for weeks, so it is
# followed whatever its age (worker.domain.scan_params).
FRESH_PARAMS = {"fresh": True}
_ACTIVE = [status.value for status in ACTIVE_STATUSES]
# A page holds at most 100 listings; a bound keeps one read small whatever happened.
PAGE_READ_LIMIT = 1000


@dataclass(frozen=True)
class PendingPass:
    scan_id: uuid.UUID
    chat_id: int
    alerted_through_id: int


def pending_passes(
    session: Session, within_seconds: float, allowed_owners: frozenset[int] = frozenset()
) -> list[PendingPass]:
    """Passes running or just ended, with finds after their cursor, oldest first: those
    started in the last `within_seconds`, and a fresh watch's whatever its age; only of
    watches whose owner is on the allow-list (of every watch while none is set)."""
    unalerted = exists().where(
        ScanOpportunity.scan_id == WatchPass.scan_id,
        ScanOpportunity.id > WatchPass.alerted_through_id,
    )
    followed = ScanCheckpoint.status.in_(_ACTIVE) | (
        ScanCheckpoint.updated_at > func.now() - seconds(FOLLOW_AFTER_END_SECONDS)
    )
    rows = session.execute(
        select(WatchPass.scan_id, WatchPass.chat_id, WatchPass.alerted_through_id)
        .join(ScanCheckpoint, ScanCheckpoint.scan_id == WatchPass.scan_id)
        .join(ScanWatch, ScanWatch.id == WatchPass.watch_id)
        .where(
            (WatchPass.created_at > func.now() - seconds(within_seconds))
            | ScanCheckpoint.params.contains(FRESH_PARAMS),  # JSONB @>
            followed,
            unalerted,
            owner_allowed(allowed_owners),
            ScanWatch.paused_reason.is_(None),  # its chat refused alerts: none will get there
        )
        .order_by(WatchPass.created_at)
        .limit(PENDING_LIMIT)
    )
    return [PendingPass(row.scan_id, row.chat_id, row.alerted_through_id) for row in rows]


def cursor_of(session: Session, scan_id: uuid.UUID) -> int | None:
    """The pass's cursor as it is now (None: no such pass), read again under its send lock."""
    return session.scalar(select(WatchPass.alerted_through_id).where(WatchPass.scan_id == scan_id))


def next_page_finds(session: Session, scan_id: uuid.UUID, after_id: int) -> list[Find]:
    """The finds after the cursor that one commit stored: the leading run of one page.

    A scan's pages commit one after another (the fence), so its opportunity ids grow in
    commit order; a page drained midway commits in parts, each its own run.
    """
    fee = frozen_fee(
        session.scalar(select(ScanCheckpoint.params).where(ScanCheckpoint.scan_id == scan_id))
    )
    rows = session.scalars(
        select(ScanOpportunity)
        .where(*of_scan(scan_id), ScanOpportunity.id > after_id)
        .order_by(ScanOpportunity.id)
        .limit(PAGE_READ_LIMIT)
    ).all()
    finds: list[Find] = []
    for row in rows:
        if finds and row.page_seq != finds[0].page_seq:
            break
        _, profit_cents = judged_fee_and_profit(row, fee)
        finds.append(
            Find(
                row.id,
                row.item_id,
                row.title,
                row.price_cents,
                row.reference_price_cents,
                profit_cents,
                row.profit_percent,
                row.page_seq,
                judging_of(row),
            )
        )
    return finds


def advance(session: Session, scan_id: uuid.UUID, old_through_id: int, new_through_id: int) -> bool:
    """Move the pass's cursor past finds that were alerted (or had been already); False if
    it is no longer at `old_through_id`, as when a send lock ran out under a slow sender."""
    result = session.execute(
        update(WatchPass)
        .where(WatchPass.scan_id == scan_id, WatchPass.alerted_through_id == old_through_id)
        .values(alerted_through_id=new_through_id)
    )
    return rowcount(result) == 1


def judging_of(row: ScanOpportunity) -> Judging | None:
    """How a stored find was judged; None for one stored before fees were looked up."""
    if row.fee_bps is None or row.fee_source is None:
        return None
    return Judging(
        fee_bps=row.fee_bps,
        fee_source=FEE_SOURCE_NAMES.get(row.fee_source, "unknown"),
        sell_now_profit_cents=row.sell_now_profit_cents,
        listing_profit_cents=row.listing_profit_cents,
        sales_7d=row.sales_7d,
        locked=bool(row.locked),
        lock_days=row.lock_days,
        reference_kind=None
        if row.reference_kind is None
        else REFERENCE_NAMES.get(row.reference_kind),
    )
