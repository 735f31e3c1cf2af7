"""The `last_sales` reference: the median of a title's last SALES_COUNT sales on DMarket
(`GET /trade-aggregator/v1/last-sales`), outliers left out, with how liquid the title is.

The outlier rule: take the median m of every sale read; leave out each sale above 2·m or
below m/2 (a gift at a cent, a mistyped listing bought at ten times the price); the
reference price is the median of the sales kept, and `order_count` how many were kept.
A median of an even count is the mean of the middle two, rounded down to the cent.
`sales_7d` counts the sales read that were made in the 7 days before now, outliers
included (they are trades, and trades are what liquidity is); `last_sale_at` is the newest
sale's time. No sale (or a median of zero) is no reference.

One request per title not in the fleet's cache, so a page of new titles costs up to one
request per title: cheaper per title than nothing, dearer than `best_bid`'s one per page.
The spec does not give the unit of a sale's `price`; it is read as USD dollars in a
decimal string ("12.34" is 1234 cents), which the loopback DMarket's sales of a known
listing check (tests/contract/test_reference.py). Its shape and size are checked before
any arithmetic: "1e999990" would take Decimal seconds, "1e999999999" overflow it. A sale's
`date` is Unix seconds in a string of digits ("1782907200").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

from worker.domain.listing import Item
from worker.domain.reference import LAST_SALES, Reference
from worker.errors import RetryableMarketError
from worker.markets.dmarket import bounds
from worker.markets.dmarket.transport import LAST_SALES as LAST_SALES_ENDPOINT
from worker.markets.dmarket.transport import DMarketTransport
from worker.markets.dmarket.v1_items import MISSING, describe
from worker.markets.references.cache import ReferenceCache
from worker.markets.references.source import by_title, now

PATH: Final = "/trade-aggregator/v1/last-sales"
# Twenty sales, the most DMarket gives in one request: enough that a few odd ones cannot
# move the median far, and enough history to tell a title sold weekly from one sold daily.
SALES_COUNT: Final = 20
# The window `sales_7d` counts sales in.
RECENT_SALES_WINDOW: Final = timedelta(days=7)
# A decimal number of dollars, with an exponent of two digits at most: short enough that
# reading it costs nothing, whatever its digits.
_DOLLARS: Final = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?(?:[eE][+-]?[0-9]{1,2})?")
# The largest power of ten of a price in dollars whose cents have PRICE_MAX_DIGITS digits.
_DOLLARS_MAX_EXPONENT: Final = bounds.PRICE_MAX_DIGITS - 3
# Unix seconds of at most 11 digits (up to the year 5138): any more is past what a
# datetime holds, and no sale's.
_UNIX_SECONDS: Final = re.compile(r"[0-9]{1,11}")


@dataclass(frozen=True)
class Sale:
    """One sale DMarket reports: what was paid, in cents, and when."""

    price_cents: int
    sold_at: datetime


class LastSalesReference:
    """Median recent sale prices of one game, looked up through the fleet's cache.

    `clock`: what "now" is for the 7-day window and the fetch time.
    """

    kind = LAST_SALES

    def __init__(
        self,
        transport: DMarketTransport,
        game_id: str,
        cache: ReferenceCache,
        clock: Callable[[], datetime] = now,
    ) -> None:
        self._transport = transport
        self._game_id = game_id
        self._cache = cache
        self._clock = clock

    def references(self, items: Sequence[Item]) -> list[Reference | None]:
        return by_title(items, lambda titles: self._cache.lookup(titles, self._fetch))

    def refresh(self, items: Sequence[Item]) -> list[Reference | None]:
        return by_title(items, lambda titles: self._cache.refresh(titles, self._fetch))

    def _fetch(self, titles: list[str]) -> dict[str, Reference | None]:
        return {title: self._reference(title) for title in titles}

    def _reference(self, title: str) -> Reference | None:
        params = {"gameId": self._game_id, "title": title, "limit": str(SALES_COUNT)}
        payload = self._transport.send(
            LAST_SALES_ENDPOINT, "GET", PATH, params, unreadable=RetryableMarketError
        )
        return reference_of(parse_sales(payload), self._clock())


def reference_of(sales: Sequence[Sale], fetched_at: datetime) -> Reference | None:
    """The `last_sales` reference of `sales` read at `fetched_at`, by the outlier rule of
    this module's docstring; None when there is no sale or the kept median is zero."""
    if not sales:
        return None
    middle = median([sale.price_cents for sale in sales])
    kept = [
        sale.price_cents
        for sale in sales
        if sale.price_cents <= 2 * middle and 2 * sale.price_cents >= middle
    ]
    # Two sales can both fall outside: [0, 3] has median 1.
    price_cents = median(kept) if kept else 0
    if price_cents <= 0:
        return None
    since = fetched_at - RECENT_SALES_WINDOW
    return Reference(
        LAST_SALES,
        price_cents,
        len(kept),
        fetched_at,
        sales_7d=sum(1 for sale in sales if sale.sold_at >= since),
        last_sale_at=max(sale.sold_at for sale in sales),
    )


def median(prices: Sequence[int]) -> int:
    """The median of non-empty `prices`; of an even count, the middle two's mean rounded
    down to the cent."""
    ordered = sorted(prices)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) // 2


def parse_sales(payload: object) -> list[Sale]:
    """The first SALES_COUNT sales, each with its price and date; RetryableMarketError
    naming a defect's JSON path (`sales[3].date`), since a lookup asked again may well be
    answered properly."""
    sales = []
    for index, sale in _sale_objects(payload):
        price_cents = _cents(sale.get("price", MISSING), f"sales[{index}].price")
        sold_at = _sold_at(sale.get("date", MISSING), f"sales[{index}].date")
        sales.append(Sale(price_cents, sold_at))
    return sales


def parse_sale_prices(payload: object) -> list[int]:
    """The first SALES_COUNT sales' prices in cents, their dates unread."""
    return [
        _cents(sale.get("price", MISSING), f"sales[{index}].price")
        for index, sale in _sale_objects(payload)
    ]


def _sale_objects(payload: object) -> list[tuple[int, dict[str, object]]]:
    """The first SALES_COUNT sale objects with their index in `sales`."""
    if not isinstance(payload, dict):
        raise _malformed("response body", "an object", payload)
    sales = payload.get("sales", MISSING)
    if not isinstance(sales, list):
        raise _malformed("sales", "a list", sales)
    objects = []
    for index, sale in enumerate(sales[:SALES_COUNT]):
        if not isinstance(sale, dict):
            raise _malformed(f"sales[{index}]", "an object", sale)
        objects.append((index, sale))
    return objects


def _cents(value: object, path: str) -> int:
    """Dollars as cents, refused (never computed) unless a plain decimal of at most
    PRICE_MAX_DIGITS digits of cents: no NaN, no infinity, no exponent past two digits."""
    text = value.strip() if isinstance(value, str) else None
    if text is None or not _DOLLARS.fullmatch(text):
        raise _malformed(path, 'a string of USD dollars such as "12.34"', value)
    dollars = Decimal(text)
    if dollars and dollars.adjusted() > _DOLLARS_MAX_EXPONENT:
        raise _malformed(path, f"dollars below 1e{_DOLLARS_MAX_EXPONENT + 1}", value)
    return int((dollars * 100).to_integral_value())


def _sold_at(value: object, path: str) -> datetime:
    """Unix seconds in a string of ASCII digits, as a UTC time; nothing else (no number,
    no sign, no fraction, no space) is a date DMarket sends."""
    if not isinstance(value, str) or not _UNIX_SECONDS.fullmatch(value):
        raise _malformed(path, 'a string of Unix seconds such as "1782907200"', value)
    return datetime.fromtimestamp(int(value), UTC)


def _malformed(path: str, expected: str, value: object) -> RetryableMarketError:
    return RetryableMarketError(f"last sales: {path}: expected {expected}, got {describe(value)}")
