"""A listing judged with the fee its sale pays, both exits, liquidity and its lock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from worker.domain.appraisal import Appraisal, Illiquid, appraise, is_candidate
from worker.domain.evidence import Evidence
from worker.domain.fees import FeeTable, ReducedFee
from worker.domain.listing import Item
from worker.domain.opportunities import Level, Opportunity
from worker.domain.reference import BEST_BID, LAST_SALES, Reference
from worker.domain.scan_params import ScanParams

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()
TITLE = "AK-47 | Redline (Field-Tested)"
FEES = FeeTable(
    default_bps=500,
    min_amount_cents=10,
    reduced=(ReducedFee(TITLE, 200, 1_000, 2_000, NOW + 3600),),
    fetched_at=NOW - 60,
)
LEVEL = Level("standard", 100, 100_000, 0.05)


def _bid(cents: int, orders: int = 4) -> Reference:
    return Reference(BEST_BID, cents, orders, datetime.fromtimestamp(NOW, UTC))


def _sales(cents: int, sales_7d: int = 5, days_ago: float = 1.0) -> Reference:
    last = datetime.fromtimestamp(NOW - days_ago * 86_400, UTC)
    return Reference(
        LAST_SALES, cents, 8, datetime.fromtimestamp(NOW, UTC), sales_7d=sales_7d, last_sale_at=last
    )


def _appraise(
    price: int,
    kind: str,
    bid: Reference | None,
    sales: Reference | None,
    *,
    level: Level = LEVEL,
    locked: bool = False,
    fees: FeeTable = FEES,
) -> Appraisal | Illiquid | None:
    return appraise(
        title=TITLE,
        price_cents=price,
        judged_kind=kind,
        listed_reference_cents=None,
        evidence=Evidence(bid, sales, fees, NOW),
        rule=level,
        locked=locked,
        lock_days=7 if locked else None,
    )


def test_each_exit_pays_the_fee_of_its_own_sale_price() -> None:
    # The bid of $15 lies in the title's reduced band ($10-$20): 2 %, 30 cents. The median
    # of its sales, $25, is outside it: the default 5 %, 125 cents.
    found = _appraise(1_000, BEST_BID, _bid(1_500), _sales(2_500))
    assert not isinstance(found, Illiquid) and found is not None
    assert (found.judged.fee.bps, found.judged.fee.source, found.judged.fee.cents) == (
        200,
        "reduced",
        30,
    )
    assert found.sell_now is not None and found.sell_now.profit_cents == 1_500 - 30 - 1_000
    assert found.listing is not None and found.listing.profit_cents == 2_500 - 125 - 1_000
    assert found.listing.fee.source == "default"


def test_an_expired_reduced_fee_is_not_used_and_the_minimum_amount_floors_a_fee() -> None:
    expired = FeeTable(500, 10, (ReducedFee(TITLE, 200, 1_000, 2_000, NOW - 1),), NOW - 60)
    found = _appraise(1_000, BEST_BID, _bid(1_500), _sales(1_500), fees=expired)
    assert not isinstance(found, Illiquid) and found is not None
    assert (found.judged.fee.bps, found.judged.fee.source) == (500, "default")
    cheap = FeeTable(500, 10, (), NOW - 60)
    # 5 % of $1.50 is 7.5 cents, rounded up to 8, floored at the minimum of 10.
    assert cheap.fee_for(TITLE, 150, NOW).cents == 10


def test_the_margin_is_tested_after_the_judged_exits_fee_exactly_on_the_threshold() -> None:
    # Bid $21.00 (default 5 % = 105): 2100 - 105 - price >= 0.05 * price  <=>  price <= 1900
    assert _appraise(1_900, BEST_BID, _bid(2_100), _sales(2_100)) is not None
    assert _appraise(1_901, BEST_BID, _bid(2_100), _sales(2_100)) is None


@pytest.mark.parametrize(
    ("sales", "bid", "why"),
    [
        (_sales(2_000, sales_7d=2), _bid(2_000), "2 sales in 7 days, fewer than 3"),
        (_sales(2_000, days_ago=4.0), _bid(2_000), "last sale 4.0 days ago, more than 3"),
        (_sales(2_000), _bid(2_000, orders=0), "0 buy orders, fewer than 1"),
        (None, _bid(2_000), "0 sales in 7 days, fewer than 3"),
    ],
)
def test_a_candidate_that_fails_a_liquidity_minimum_is_illiquid(
    sales: Reference | None, bid: Reference, why: str
) -> None:
    assert _appraise(1_000, BEST_BID, bid, sales) == Illiquid(why)


def test_buy_orders_count_only_against_the_best_bid() -> None:
    found = _appraise(1_000, LAST_SALES, _bid(900, orders=0), _sales(2_000))
    assert not isinstance(found, Illiquid) and found is not None
    assert found.sell_now is not None and found.sell_now.profit_cents < 0


def test_a_locked_listing_needs_the_locked_margin_more_or_is_left_out() -> None:
    # 2100 - 105 - 1800 = 195, 10.8 %: enough for 5 %, not for 5 % + 8 %.
    level = Level("standard", 100, 100_000, 0.05, locked_margin=0.08)
    assert _appraise(1_800, BEST_BID, _bid(2_100), _sales(2_100), level=level) is not None
    assert _appraise(1_800, BEST_BID, _bid(2_100), _sales(2_100), level=level, locked=True) is None
    excluding = Level("standard", 100, 100_000, 0.05, exclude_locked=True)
    assert not is_candidate(
        title=TITLE,
        price_cents=1_000,
        judged_kind=BEST_BID,
        listed_reference_cents=None,
        evidence=Evidence(_bid(5_000), None, FEES, NOW),
        rule=excluding,
        locked=True,
    )


def test_a_scan_stores_how_its_find_was_judged() -> None:
    item = Item(
        "offer-1",
        TITLE,
        1_000,
        1_500,
        extra={"locked": True},
        reference=_bid(1_500),
        evidence=Evidence(_bid(1_500), _sales(2_500), FEES, NOW),
    )
    rule = Level("standard", 100, 100_000, 0.05, locked_margin=0.0)
    found = ScanParams(game="csgo", market="dmarket", reference=BEST_BID, level_rule=rule).judge(
        item
    )
    assert isinstance(found, Opportunity)
    assert (found.fee_bps, found.fee_source, found.locked, found.lock_days) == (
        200,
        "reduced",
        True,
        None,
    )
    assert (found.sell_now_profit_cents, found.listing_profit_cents) == (470, 1_375)
    assert (found.profit_cents, found.fee_cents, found.sales_7d) == (470, 30, 5)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("min_sales_7d", 21),
        ("min_buy_orders", -1),
        ("max_last_sale_days", 0),
        ("locked_margin", 10),
        ("exclude_locked", "yes"),
    ],
)
def test_a_levels_liquidity_and_lock_fields_are_validated_by_name(
    field: str, value: object
) -> None:
    with pytest.raises(ValueError, match=rf"^level standard: {field} must be"):
        Level("standard", 100, 100_000, 0.05, **{field: value})  # type: ignore[arg-type]
