"""How a listing is judged with the market's real fee, both exits, liquidity and its lock
(DESIGN invariant 14): pure rules, no I/O.

A trader leaves an item by one of two exits: **sell now** into the best buy order, or
**sell by listing** near what the item really sells for (the median of its last sales; on
a market with a suggested price, that price). The fee is charged on the sale, so each
exit's fee is the one its sale price pays (worker.domain.fees.FeeTable.fee_for: a reduced
fee of the title inside its band, else the default, never below the minimum amount).

A listing is a **candidate** when the exit its scan's reference names leaves, after that
exit's fee, at least the level's margin over the price (plus `locked_margin` if the item
is trade-locked). A candidate is a **find** only if it is liquid: at least
`min_sales_7d` sales in the last 7 days, the last sale at most `max_last_sale_days` old,
and (judged against the best bid) at least `min_buy_orders` buy orders. A candidate that
fails is counted as illiquid, not stored. Where the market gives no liquidity at all (the
simulated market, DMarket v1's suggested price) the gate has nothing to read and is not
applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from functools import lru_cache
from typing import Final

from worker.domain.evidence import Evidence
from worker.domain.fees import AppliedFee, fee_cents
from worker.domain.listing import Item
from worker.domain.opportunities import Level, Opportunity
from worker.domain.reference import BEST_BID, LAST_SALES, SECOND_MARKETS, Reference

# Exits, as a find names the one it was judged by.
SELL_NOW: Final = "sell_now"
LISTING: Final = "listing"
DAY_SECONDS: Final = 86_400


@dataclass(frozen=True)
class Illiquid:
    """A candidate that failed the level's liquidity minimums: counted, not stored."""

    reason: str


@dataclass(frozen=True)
class Exit:
    """One way out of an item: the price it sells at, the fee that sale pays, what is left."""

    price_cents: int
    fee: AppliedFee
    profit_cents: int


@dataclass(frozen=True)
class Appraisal:
    """A listing's judged exit and both exits' profits, its liquidity and lock."""

    judged: Exit
    sell_now: Exit | None
    listing: Exit | None
    sales_7d: int | None
    last_sale_at: datetime | None
    locked: bool
    lock_days: int | None


def exit_of(
    price_cents: int, sale_cents: int | None, title: str, evidence: Evidence
) -> Exit | None:
    """The exit selling at `sale_cents` (None: the market gives no such price)."""
    if sale_cents is None:
        return None
    fee = evidence.fees.fee_for(title, sale_cents, evidence.now)
    return Exit(sale_cents, fee, sale_cents - fee.cents - price_cents)


def elsewhere_exit(price_cents: int, evidence: Evidence) -> Exit | None:
    """The exit of listing the item on the second market, after its seller fee (None: that
    market does not list the title)."""
    reference, seller_fee = evidence.elsewhere, evidence.elsewhere_fee
    if reference is None or seller_fee is None:
        return None
    fee = seller_fee.fee_for(reference.price_cents)
    return Exit(reference.price_cents, fee, reference.price_cents - fee.cents - price_cents)


def exits(
    title: str,
    price_cents: int,
    judged_kind: str | None,
    listed_reference_cents: int | None,
    evidence: Evidence,
) -> tuple[Exit | None, Exit | None, Exit | None]:
    """(judged, sell now, listing): the best bid is the sell-now exit; the median of the
    last sales the listing exit, or on a market with a suggested price, that price; judged
    against a second market, listing it there is the one exit."""
    if judged_kind in SECOND_MARKETS:
        elsewhere = elsewhere_exit(price_cents, evidence)
        return elsewhere, None, elsewhere
    bid, sales = evidence.best_bid, evidence.last_sales
    sell_now = exit_of(price_cents, None if bid is None else bid.price_cents, title, evidence)
    if sales is not None:
        listing_cents: int | None = sales.price_cents
    elif judged_kind in (BEST_BID, LAST_SALES):
        listing_cents = None
    else:
        listing_cents = listed_reference_cents
    listing = exit_of(price_cents, listing_cents, title, evidence)
    return (sell_now if judged_kind == BEST_BID else listing), sell_now, listing


def is_candidate(
    *,
    title: str,
    price_cents: int,
    judged_kind: str | None,
    listed_reference_cents: int | None,
    evidence: Evidence,
    rule: Level,
    locked: bool,
) -> bool:
    """Whether the listing passes its price test: the judged exit, after its fee, leaves
    the level's margin (plus `locked_margin` for a locked item). Only a candidate costs
    the lookups of the other exit and of liquidity."""
    return (
        _judged_if_candidate(
            title, price_cents, judged_kind, listed_reference_cents, evidence, rule, locked
        )
        is not None
    )


def _judged_if_candidate(
    title: str,
    price_cents: int,
    judged_kind: str | None,
    listed_reference_cents: int | None,
    evidence: Evidence,
    rule: Level,
    locked: bool,
) -> Exit | None:
    """The judged exit of a candidate, else None. This runs for every listing of every
    page, so only the judged exit is priced, and the margin is a pair of integers."""
    if price_cents <= 0 or (locked and rule.exclude_locked):
        return None
    elsewhere = judged_kind in SECOND_MARKETS
    if elsewhere:
        judged = elsewhere_exit(price_cents, evidence)
        if judged is None or not _leaves_margin(
            judged.profit_cents, price_cents, rule, locked, elsewhere
        ):
            return None
        return judged
    if judged_kind == BEST_BID:
        bid = evidence.best_bid
        sale_cents = None if bid is None else bid.price_cents
    elif evidence.last_sales is not None:
        sale_cents = evidence.last_sales.price_cents
    elif judged_kind == LAST_SALES:
        sale_cents = None
    else:
        sale_cents = listed_reference_cents
    if sale_cents is None:
        return None
    # Priced as plain integers first: most listings are no candidate, and an Exit with its
    # AppliedFee (frozen dataclasses, dear to build) is made only for one that is.
    fees = evidence.fees
    bps, source = fees.rate_for(title, sale_cents, evidence.now)
    fee = fee_cents(sale_cents, bps, fees.min_amount_cents)
    profit_cents = sale_cents - fee - price_cents
    if not _leaves_margin(profit_cents, price_cents, rule, locked, elsewhere):
        return None
    return Exit(sale_cents, AppliedFee(bps, source, fee), profit_cents)


def _leaves_margin(
    profit_cents: int, price_cents: int, rule: Level, locked: bool, elsewhere: bool
) -> bool:
    """Whether `profit_cents` on `price_cents` is the level's margin or more, plus
    `locked_margin` for a locked item and `hold_margin` on a second market."""
    numerator, denominator = _margin(
        rule.min_profit,
        rule.locked_margin if locked else 0.0,
        rule.hold_margin if elsewhere else 0.0,
    )
    return profit_cents * denominator >= numerator * price_cents


@lru_cache(maxsize=64)
def _margin(min_profit: float, locked_margin: float, hold_margin: float) -> tuple[int, int]:
    """The margin as an exact fraction of integers, from the decimals a level is written in:
    a listing right on the threshold never falls to float rounding."""
    margin = Fraction(str(min_profit)) + Fraction(str(locked_margin)) + Fraction(str(hold_margin))
    return margin.numerator, margin.denominator


def appraise(
    *,
    title: str,
    price_cents: int,
    judged_kind: str | None,
    listed_reference_cents: int | None,
    evidence: Evidence,
    rule: Level,
    locked: bool,
    lock_days: int | None,
) -> Appraisal | Illiquid | None:
    """The appraisal of a listing that passes its price test and the liquidity minimums,
    Illiquid for a candidate that fails them, None for no candidate. `evidence` holds
    both exits' references (the other exit's looked up for candidates only)."""
    judged = _judged_if_candidate(
        title, price_cents, judged_kind, listed_reference_cents, evidence, rule, locked
    )
    if judged is None:
        return None
    why = (
        _illiquid_elsewhere(rule, judged_kind, evidence.elsewhere)
        if judged_kind in SECOND_MARKETS
        else _illiquid(rule, judged_kind, evidence.best_bid, evidence.last_sales, evidence.now)
    )
    if why is not None:
        return Illiquid(why)
    _, sell_now, listing = exits(title, price_cents, judged_kind, listed_reference_cents, evidence)
    sales = evidence.elsewhere if judged_kind in SECOND_MARKETS else evidence.last_sales
    return Appraisal(
        judged=judged,
        sell_now=sell_now,
        listing=listing,
        sales_7d=None if sales is None else sales.sales_7d,
        last_sale_at=None if sales is None else sales.last_sale_at,
        locked=locked,
        lock_days=lock_days,
    )


def _illiquid(
    rule: Level,
    judged_kind: str | None,
    bid: Reference | None,
    sales: Reference | None,
    now: float,
) -> str | None:
    """Why a candidate is no exit a trader can count on, or None if it is liquid."""
    if judged_kind not in (BEST_BID, LAST_SALES):
        return None  # the market tells nothing of liquidity (simulated, v1's suggested price)
    sales_7d = 0 if sales is None or sales.sales_7d is None else sales.sales_7d
    if sales_7d < rule.min_sales_7d:
        return f"{sales_7d} sales in 7 days, fewer than {rule.min_sales_7d}"
    last = None if sales is None else sales.last_sale_at
    if last is None:
        return "no sale on record"
    age_days = (now - last.timestamp()) / DAY_SECONDS
    if age_days > rule.max_last_sale_days:
        return f"last sale {age_days:.1f} days ago, more than {rule.max_last_sale_days:g}"
    if judged_kind == BEST_BID:
        orders = 0 if bid is None or bid.order_count is None else bid.order_count
        if orders < rule.min_buy_orders:
            return f"{orders} buy orders, fewer than {rule.min_buy_orders}"
    return None


def _illiquid_elsewhere(rule: Level, kind: str | None, elsewhere: Reference | None) -> str | None:
    """Why a candidate judged against a second market cannot count on selling there."""
    volume = 0 if elsewhere is None or elsewhere.sales_7d is None else elsewhere.sales_7d
    if volume < rule.min_volume_7d:
        market = SECOND_MARKETS.get(kind or "", kind)
        return f"{volume} sales on {market} in 7 days, fewer than {rule.min_volume_7d}"
    return None


def opportunity_of(item: Item, judged_kind: str | None, appraisal: Appraisal) -> Opportunity:
    """The find a listing's appraisal makes: its judged exit's reference, fee and profit,
    both exits' profits, its liquidity and its lock."""
    judged, sell_now, listing = appraisal.judged, appraisal.sell_now, appraisal.listing
    looked_up = item.reference
    return Opportunity(
        item_id=item.item_id,
        title=item.title,
        price_cents=item.price_cents,
        reference_price_cents=judged.price_cents,
        fee_cents=judged.fee.cents,
        profit_cents=judged.profit_cents,
        profit_percent=round(100 * judged.profit_cents / item.price_cents, 2),
        reference_kind=judged_kind if looked_up is None else looked_up.kind,
        order_count=None if looked_up is None else looked_up.order_count,
        reference_fetched_at=None if looked_up is None else looked_up.fetched_at,
        fee_bps=judged.fee.bps,
        fee_source=judged.fee.source,
        sell_now_profit_cents=None if sell_now is None else sell_now.profit_cents,
        listing_profit_cents=None if listing is None else listing.profit_cents,
        sales_7d=appraisal.sales_7d,
        last_sale_at=appraisal.last_sale_at,
        locked=appraisal.locked,
        lock_days=appraisal.lock_days,
    )
