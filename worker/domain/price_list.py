"""Another market's whole price list, as a second market's reference is read from it.

Some markets publish every item's price in one answer (Skinport's `/v1/items` with its
`/v1/sales/history`). A `PriceList` is one such read: per title the lowest listing and the
sales in the last 7 days, in integer cents of one currency, and when it was read. A DMarket
listing is judged against what selling the same title there would bring
(worker.domain.appraisal).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from worker.errors import InvalidInput

# The currencies a second market's list may be read in: DMarket's prices are USD cents, and
# comparing across currencies would need a rate nobody here vouches for.
PRICE_LIST_CURRENCIES = ("USD",)


@dataclass(frozen=True)
class MarketPrice:
    """One title on the other market: its lowest listing (None: nothing listed now) and its
    sales in the last 7 days (None: the market gave no history for it)."""

    min_price_cents: int | None
    volume_7d: int | None


@dataclass(frozen=True)
class PriceList:
    """Every title a market lists, read at `fetched_at` (Unix seconds) in `currency`.

    `skipped`: items of the answer left out because a price was not a finite number >= 0.
    """

    market: str
    currency: str
    fetched_at: float
    prices: Mapping[str, MarketPrice] = field(default_factory=dict)
    skipped: int = 0

    def __post_init__(self) -> None:
        currency_of(self.currency)


def currency_of(value: object, name: str = "currency") -> str:
    """A currency a second market's list may be read in; InvalidInput naming `name` if not."""
    if value not in PRICE_LIST_CURRENCIES:
        raise InvalidInput(
            f"{name} must be one of {', '.join(PRICE_LIST_CURRENCIES)}, got {value!r}"
        )
    return str(value)
