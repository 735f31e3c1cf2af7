"""Arbitrage values: levels (price bands, margins, liquidity minimums, the lock rule), the
opportunity a find is, and what a stored opportunity's columns can hold. The rule itself
(fees, exits, liquidity, locks) is worker.domain.appraisal's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from worker.errors import InvalidInput


@dataclass(frozen=True)
class Level:
    """A named price band and the minimum profit (a fraction) asked for in it."""

    name: str
    min_price_cents: int
    max_price_cents: int
    min_profit: float
    # Liquidity (worker.domain.appraisal), for candidates judged against DMarket's best bid
    # or last sales: sales in the last 7 days, the last sale's age, buy orders behind a
    # best bid. A trade-locked item needs `locked_margin` more, or is left out.
    min_sales_7d: int = 3
    max_last_sale_days: float = 3.0
    min_buy_orders: int = 1
    locked_margin: float = 0.05
    exclude_locked: bool = False
    # Against a second market (worker.domain.reference.SECOND_MARKETS): its own count of
    # sales in the last 7 days, and the margin added for the days the item is held on its
    # way there (the price may move meanwhile).
    min_volume_7d: int = 3
    hold_margin: float = 0.05

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
        for name in ("min_profit", "locked_margin", "hold_margin"):
            fraction = getattr(self, name)
            if (
                isinstance(fraction, bool)
                or not isinstance(fraction, int | float)
                or not 0 <= fraction < 10
            ):
                raise InvalidInput(
                    f"level {self.name}: {name} must be a fraction from 0 to below 10, "
                    f"got {fraction!r}"
                )
        for name, most in (
            ("min_sales_7d", 20),
            ("min_buy_orders", 1_000_000),
            ("min_volume_7d", 1_000_000),
        ):
            count = getattr(self, name)
            if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= most:
                raise InvalidInput(
                    f"level {self.name}: {name} must be a whole number from 0 to {most}, "
                    f"got {count!r}"
                )
        days = self.max_last_sale_days
        if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days <= 365:
            raise InvalidInput(
                f"level {self.name}: max_last_sale_days must be a number of days above 0 "
                f"and at most 365, got {days!r}"
            )
        if not isinstance(self.exclude_locked, bool):
            raise InvalidInput(
                f"level {self.name}: exclude_locked must be true or false, "
                f"got {self.exclude_locked!r}"
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
    # How it was judged (DESIGN invariant 14, worker.domain.appraisal): the fee of its judged
    # exit in basis points and where that fee came from (worker.domain.fees), both exits'
    # profits in cents (None: the market gives no such price), its liquidity and its lock.
    fee_bps: int | None = None
    fee_source: str | None = None
    sell_now_profit_cents: int | None = None
    listing_profit_cents: int | None = None
    sales_7d: int | None = None
    last_sale_at: datetime | None = None
    locked: bool | None = None
    lock_days: int | None = None


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
