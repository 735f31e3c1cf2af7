"""The finds figure 8 stores: the catalog's, judged as a DMarket scan judges them (the
published fees, both exits, liquidity, the lock), and the same finds as the table held them
before revision 0014 (how a find was judged, all NULL).

The catalog's finds are judged again by the real rule (worker.domain.appraisal) on made-up
but DMarket-like evidence: a median of last sales at the catalog's reference price, a best
bid 5 % under it, a few sales a week, the last one hours old, DMarket's 5 % default fee
with a quarter of the titles on the day's reduced list at 2 %. The numbers only need to be
plausible: every column they fill has a fixed width, whatever value it holds.
"""

from __future__ import annotations

import zlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from worker.domain import appraisal
from worker.domain.evidence import Evidence
from worker.domain.fees import FeeTable, ReducedFee
from worker.domain.listing import Item
from worker.domain.opportunities import LEVELS, Opportunity
from worker.domain.reference import BEST_BID, LAST_SALES, Reference

JUDGED_AT = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
DEFAULT_FEE_BPS = 500
REDUCED_FEE_BPS = 200
# One title in this many is on the day's reduced list.
REDUCED_EVERY = 4
# The best bid under the median of the last sales, in basis points of it.
BID_BPS_OF_MEDIAN = 9_500
RULE = LEVELS["standard"]


def as_stored_before(found: list[Opportunity]) -> list[Opportunity]:
    """The finds as a row stored before revision 0014 holds them: the fields it added, NULL."""
    return [
        replace(
            hit,
            fee_bps=None,
            fee_source=None,
            sell_now_profit_cents=None,
            listing_profit_cents=None,
            sales_7d=None,
            last_sale_at=None,
            locked=None,
            lock_days=None,
        )
        for hit in found
    ]


def judged_on_dmarket(found: list[Opportunity]) -> list[Opportunity]:
    """The finds as a DMarket scan judging by last sales stores them, every field set but
    `lock_days` (they are not trade-locked)."""
    fees = _fee_table(found)
    return [_judged(index, hit, fees) for index, hit in enumerate(found)]


def _fee_table(found: list[Opportunity]) -> FeeTable:
    """DMarket's default fee, and a reduced one over every price for some titles."""
    titles = sorted({hit.title for hit in found})
    reduced = tuple(
        ReducedFee(title, REDUCED_FEE_BPS, 0, 10**9, JUDGED_AT.timestamp() + 86_400)
        for title in titles
        if zlib.crc32(title.encode()) % REDUCED_EVERY == 0
    )
    return FeeTable(DEFAULT_FEE_BPS, 1, reduced, JUDGED_AT.timestamp())


def _judged(index: int, hit: Opportunity, fees: FeeTable) -> Opportunity:
    fetched_at = JUDGED_AT - timedelta(seconds=index % 3_600)
    median = hit.reference_price_cents
    sales = Reference(
        LAST_SALES,
        median,
        order_count=20,
        fetched_at=fetched_at,
        sales_7d=RULE.min_sales_7d + index % 18,
        last_sale_at=fetched_at - timedelta(minutes=7 * (index % 300)),
    )
    bid = Reference(BEST_BID, median * BID_BPS_OF_MEDIAN // 10_000, 1 + index % 40, fetched_at)
    evidence = Evidence(best_bid=bid, last_sales=sales, fees=fees, now=JUDGED_AT.timestamp())
    item = Item(hit.item_id, hit.title, hit.price_cents, median, reference=sales)
    judged = appraisal.appraise(
        title=hit.title,
        price_cents=hit.price_cents,
        judged_kind=LAST_SALES,
        listed_reference_cents=median,
        evidence=evidence,
        rule=RULE,
        locked=False,
        lock_days=None,
    )
    if not isinstance(judged, appraisal.Appraisal):
        # DMarket's fees are below the catalog's 7 %, so a catalog find stays one.
        raise RuntimeError(f"{hit.item_id} is no find on DMarket's evidence: {judged!r}")
    return appraisal.opportunity_of(item, LAST_SALES, judged)
