"""Arbitrage arithmetic: which items sell below what they fetch after the market's fee.

An item is an opportunity when `(reference * (1 - fee) - price) / price >= min_profit`
and its price lies in the scan's price band. Pure functions, integer cents.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from functools import lru_cache

from worker.domain.listing import Item
from worker.errors import InvalidInput


@dataclass(frozen=True)
class Level:
    """A named price band and the minimum profit (a fraction) asked for in it."""

    name: str
    min_price_cents: int
    max_price_cents: int
    min_profit: float

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidInput(f"a level's name must be a non-empty string, got {self.name!r}")
        for bound in (self.min_price_cents, self.max_price_cents):
            if isinstance(bound, bool) or not isinstance(bound, int) or bound < 0:
                raise InvalidInput(
                    f"level {self.name}: prices must be non-negative integer cents, got {bound!r}"
                )
        if self.min_price_cents > self.max_price_cents:
            raise InvalidInput(
                f"level {self.name}: min price ({self.min_price_cents} cents) must not exceed "
                f"max price ({self.max_price_cents} cents)"
            )
        profit = self.min_profit
        if isinstance(profit, bool) or not isinstance(profit, int | float) or not 0 <= profit < 10:
            raise InvalidInput(
                f"level {self.name}: min_profit must be a fraction from 0 to below 10, "
                f"got {profit!r}"
            )


# Defaults documented in docs/cli.md: cheap items need a larger margin to be worth a trade.
LEVELS: dict[str, Level] = {
    level.name: level
    for level in (
        Level("boost", 50, 300, 0.10),
        Level("standard", 100, 10_000, 0.05),
        Level("medium", 1_000, 50_000, 0.04),
        Level("pro", 10_000, 500_000, 0.03),
    )
}


@dataclass(frozen=True)
class Opportunity:
    """An item worth buying: what it costs, what it should fetch, and the margin left."""

    item_id: str
    title: str
    price_cents: int
    reference_price_cents: int
    fee_cents: int
    profit_cents: int
    profit_percent: float
    # Which reference the item was judged against, how deep it was, and when it was fetched
    # (None for a reference the listing carried itself without a lookup).
    reference_kind: str | None = None
    order_count: int | None = None
    reference_fetched_at: datetime | None = None


# What the scan_opportunities columns hold: INTEGER cents (up to $21,474,836.47: no
# skin trades near it), the percent in INTEGER hundredths, text without NUL bytes. A value
# outside them would fail the page's whole commit.
_INT_MAX = 2**31 - 1
_PERCENT_MAX = 10**7 - 0.01


def fee_and_profit(price_cents: int, reference_price_cents: int, fee: float) -> tuple[int, int]:
    """The market's fee on the reference and the profit left, in cents: stored nowhere,
    derived from the two prices and the scan's frozen fee wherever they are shown."""
    fee_cents = round(reference_price_cents * fee)
    return fee_cents, reference_price_cents - fee_cents - price_cents


def percent_hundredths(profit_percent: float) -> int:
    """The profit percent as stored: integer hundredths (12.35 % is 1235)."""
    return round(profit_percent * 100)


def unstorable_reason(opportunity: Opportunity) -> str | None:
    """Why `opportunity` cannot be stored as it is (naming the field), or None if it can."""
    for name in ("item_id", "title"):
        if "\x00" in getattr(opportunity, name):
            return f"{name} contains a NUL byte"
    for name in ("price_cents", "reference_price_cents"):
        if abs(getattr(opportunity, name)) > _INT_MAX:
            return f"{name} {getattr(opportunity, name)} is beyond a 32-bit integer"
    if opportunity.order_count is not None and not 0 <= opportunity.order_count <= _INT_MAX:
        return f"order_count {opportunity.order_count} is beyond a 32-bit integer"
    if abs(opportunity.profit_percent) > _PERCENT_MAX:
        return f"profit_percent {opportunity.profit_percent} is beyond {_PERCENT_MAX}"
    return None


def level_named(name: str, levels: Iterable[Level] = LEVELS.values()) -> Level:
    """The level called `name` among `levels` (the configured ones, or the defaults)."""
    by_name = {level.name: level for level in levels}
    try:
        return by_name[name]
    except (KeyError, TypeError):
        raise InvalidInput(
            f"level must be one of {', '.join(sorted(by_name))}, got {name!r}"
        ) from None


@lru_cache(maxsize=64)
def _rule(fee: float, min_profit: float) -> tuple[int, int]:
    """The rule as integers: opportunity iff `reference * r >= price * p`.

    With fee = fn/fd and min_profit = mn/md as exact decimals, multiplying
    `reference * (1 - fee) - price >= min_profit * price` by fd*md > 0 gives
    `reference * (fd - fn) * md >= price * fd * (md + mn)`. Exact, so an item right on the
    threshold never falls to float rounding, and cheap enough for every item of a page.
    """
    fee_exact, profit_exact = Fraction(str(fee)), Fraction(str(min_profit))
    fn, fd = fee_exact.numerator, fee_exact.denominator
    mn, md = profit_exact.numerator, profit_exact.denominator
    return (fd - fn) * md, fd * (md + mn)


def evaluate(
    item: Item,
    *,
    fee: float,
    min_profit: float,
    min_price_cents: int,
    max_price_cents: int,
    listed_kind: str | None = None,
) -> Opportunity | None:
    """The opportunity `item` offers, or None if it is outside the band or not profitable.

    `listed_kind`: the kind recorded when the reference came with the listing itself.
    """
    price = item.price_cents
    reference = item.reference_price_cents
    if reference is None or price <= 0 or not min_price_cents <= price <= max_price_cents:
        return None
    reference_weight, price_weight = _rule(fee, min_profit)
    if reference * reference_weight < price * price_weight:
        return None
    fee_cents, profit_cents = fee_and_profit(price, reference, fee)
    looked_up = item.reference
    return Opportunity(
        item_id=item.item_id,
        title=item.title,
        price_cents=price,
        reference_price_cents=reference,
        fee_cents=fee_cents,
        profit_cents=profit_cents,
        profit_percent=round(100 * profit_cents / price, 2),
        reference_kind=listed_kind if looked_up is None else looked_up.kind,
        order_count=None if looked_up is None else looked_up.order_count,
        reference_fetched_at=None if looked_up is None else looked_up.fetched_at,
    )
