"""Opportunity rows made by hand, as a page commit would store them: in their scan's day."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity
from worker.db.opportunity_days import scan_day
from worker.domain.opportunities import fee_and_profit, percent_hundredths


def opportunity(
    session: Session,
    scan_id: uuid.UUID,
    item_id: str = "i1",
    *,
    title: str = "AK-47",
    price_cents: int = 100,
    reference_price_cents: int = 200,
    page_seq: int = 0,
    fee: float = 0.07,
) -> ScanOpportunity:
    """A row of the scan (whose checkpoint must be in the session's view), with the
    profit percent its prices and `fee` give."""
    day = session.scalar(
        select(scan_day(ScanCheckpoint.created_at)).where(ScanCheckpoint.scan_id == scan_id)
    )
    assert day is not None, f"no checkpoint {scan_id}: a row goes to its scan's day"
    _, profit = fee_and_profit(price_cents, reference_price_cents, fee)
    return ScanOpportunity(
        scan_id=scan_id,
        scan_day=day,
        item_id=item_id,
        title=title,
        price_cents=price_cents,
        reference_price_cents=reference_price_cents,
        profit_hundredths=percent_hundredths(round(100 * profit / price_cents, 2)),
        page_seq=page_seq,
    )


def reference_for_profit(price_cents: int, profit_cents: int, fee: float = 0.07) -> int:
    """A reference price that leaves exactly `profit_cents` after `fee`."""
    guess = round((price_cents + profit_cents) / (1 - fee))
    for reference in range(guess - 3, guess + 4):
        if fee_and_profit(price_cents, reference, fee)[1] == profit_cents:
            return reference
    raise ValueError(f"no reference leaves {profit_cents} cents at fee {fee}")
