"""Read-only questions users ask about scans: one, many, and what they found."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column, select
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity, ScanStatus
from models.item_key import item_id_text_sql
from worker.db.checkpoints import row_of
from worker.db.opportunity_days import scan_day
from worker.domain.checkpoint import Checkpoint
from worker.domain.fees import FEE_SOURCE_NAMES
from worker.domain.opportunities import fee_and_profit
from worker.domain.reference import BEST_BID, REFERENCE_CODES, REFERENCE_NAMES
from worker.domain.scan_params import frozen_fee
from worker.domain.validation import id_span_of, scan_id_of, user_id_of
from worker.errors import CheckpointNotFound, InvalidInput

LIST_LIMIT = 200
# Ties in profit are ordered by the id as text, as they were when the column was text.
ITEM_ID_ORDER: ColumnElement[str] = literal_column(
    item_id_text_sql(f"{ScanOpportunity.__tablename__}.{ScanOpportunity.item_id.key}")
)


def scan_status(session: Session, scan_id: uuid.UUID | str) -> Checkpoint:
    scan = scan_id_of(scan_id)
    row = row_of(session, scan)
    if row is None:
        raise CheckpointNotFound.of_scan(scan)
    return Checkpoint.from_row(row)


def list_scans(
    session: Session,
    status: str | None = None,
    user_id: int | None = None,
    id_prefix: str | None = None,
) -> list[Checkpoint]:
    """The newest scans first, at most LIST_LIMIT of them; only those whose id starts with
    `id_prefix` if given (found among all the scans, not only the newest)."""
    query = select(ScanCheckpoint)
    if id_prefix is not None:
        lowest, highest = id_span_of("id_prefix", id_prefix)
        query = query.where(ScanCheckpoint.scan_id.between(lowest, highest))
    if status is not None:
        allowed = [s.value for s in ScanStatus]
        if status not in allowed:
            raise InvalidInput(f"status must be one of {', '.join(allowed)}, got {status!r}")
        query = query.where(ScanCheckpoint.status == status)
    if user_id is not None:
        query = query.where(ScanCheckpoint.user_id == user_id_of(user_id))
    query = query.order_by(ScanCheckpoint.created_at.desc(), ScanCheckpoint.id.desc())
    return [Checkpoint.from_row(row) for row in session.scalars(query.limit(LIST_LIMIT))]


def running_scans(session: Session, user_id: int) -> int:
    """How many of the user's scans run or wait in the queue, their watches' passes aside."""
    watch_pass = ScanCheckpoint.params["metadata"].has_key("watch_id")
    count = session.scalar(
        select(func.count())
        .select_from(ScanCheckpoint)
        .where(
            ScanCheckpoint.user_id == user_id_of(user_id),
            ScanCheckpoint.status == ScanStatus.IN_PROGRESS.value,
            watch_pass.is_not(True),
        )
    )
    return count or 0


def top_opportunities(
    session: Session, scan_id: uuid.UUID | str, top: int = 20
) -> list[dict[str, Any]]:
    """The scan's best opportunities by profit percent; CheckpointNotFound for an unknown scan."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise InvalidInput(f"top must be a positive integer, got {top!r}")
    checkpoint = scan_status(session, scan_id)
    fee = frozen_fee(checkpoint.params)
    rows = session.scalars(
        select(ScanOpportunity)
        .where(*of_scan(checkpoint.scan_id))
        .order_by(ScanOpportunity.profit_hundredths.desc(), ITEM_ID_ORDER)
        .limit(top)
    )
    return [_shown(row, fee) for row in rows]


def of_scan(scan_id: uuid.UUID) -> tuple[ColumnElement[bool], ...]:
    """The rows of one scan, looked for in its own day's partition only."""
    day = select(scan_day(ScanCheckpoint.created_at)).where(ScanCheckpoint.scan_id == scan_id)
    return (
        ScanOpportunity.scan_id == scan_id,
        ScanOpportunity.scan_day == day.scalar_subquery(),
    )


def _shown(row: ScanOpportunity, fee: float) -> dict[str, Any]:
    """One opportunity as results show it: its judged exit's fee and profit as stored (rows
    stored before fees were looked up derive them from the scan's frozen fee)."""
    fee_cents, profit_cents = judged_fee_and_profit(row, fee)
    return {
        "item_id": row.item_id,
        "title": row.title,
        "price_cents": row.price_cents,
        "reference_price_cents": row.reference_price_cents,
        "fee_cents": fee_cents,
        "profit_cents": profit_cents,
        "profit_percent": row.profit_percent,
        "page_seq": row.page_seq,
        # What the listing was judged against (None in rows from before references).
        "reference_kind": None
        if row.reference_kind is None
        else REFERENCE_NAMES.get(row.reference_kind),
        "order_count": row.order_count,
        "reference_fetched_at": None
        if row.reference_fetched_at is None
        else row.reference_fetched_at.isoformat(),
        # How it was judged (None in rows stored before): worker.domain.appraisal.
        "fee_bps": row.fee_bps,
        "fee_source": None if row.fee_source is None else FEE_SOURCE_NAMES.get(row.fee_source),
        "sell_now_profit_cents": row.sell_now_profit_cents,
        "listing_profit_cents": row.listing_profit_cents,
        "sales_7d": row.sales_7d,
        "last_sale_at": None if row.last_sale_at is None else row.last_sale_at.isoformat(),
        "locked": row.locked,
        "lock_days": row.lock_days,
    }


def judged_fee_and_profit(row: ScanOpportunity, fee: float) -> tuple[int, int]:
    """The fee and profit in cents of the exit a stored find was judged by: as stored, or
    (rows from before fees were looked up) derived from the scan's frozen fee."""
    judged = (
        row.sell_now_profit_cents
        if row.reference_kind == REFERENCE_CODES[BEST_BID]
        else row.listing_profit_cents
    )
    if row.fee_bps is None or judged is None:
        return fee_and_profit(row.price_cents, row.reference_price_cents, fee)
    return row.reference_price_cents - row.price_cents - judged, judged


def opportunity_count(session: Session, scan_id: uuid.UUID) -> int:
    return (
        session.scalar(select(func.count()).select_from(ScanOpportunity).where(*of_scan(scan_id)))
        or 0
    )
