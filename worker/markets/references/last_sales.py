"""The `last_sales` reference: the median of a title's last SALES_COUNT sales on DMarket
(`GET /trade-aggregator/v1/last-sales`).

One request per title not in the fleet's cache, so a page of new titles costs up to one
request per title: cheaper per title than nothing, dearer than `best_bid`'s one per page.
The spec does not give the unit of a sale's `price`; it is read as USD dollars in a
decimal string ("12.34" is 1234 cents), which the loopback DMarket's sales of a known
listing check (tests/contract/test_reference.py). Its shape and size are checked before
any arithmetic: "1e999990" would take Decimal seconds, "1e999999999" overflow it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
# Ten sales: enough that one odd sale cannot move the median far, few enough to be recent.
SALES_COUNT: Final = 10
# A decimal number of dollars, with an exponent of two digits at most: short enough that
# reading it costs nothing, whatever its digits.
_DOLLARS: Final = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?(?:[eE][+-]?[0-9]{1,2})?")
# The largest power of ten of a price in dollars whose cents have PRICE_MAX_DIGITS digits.
_DOLLARS_MAX_EXPONENT: Final = bounds.PRICE_MAX_DIGITS - 3


class LastSalesReference:
    """Median recent sale prices of one game, looked up through the fleet's cache."""

    kind = LAST_SALES

    def __init__(self, transport: DMarketTransport, game_id: str, cache: ReferenceCache) -> None:
        self._transport = transport
        self._game_id = game_id
        self._cache = cache

    def references(self, items: Sequence[Item]) -> list[Reference | None]:
        return by_title(items, lambda titles: self._cache.lookup(titles, self._fetch))

    def _fetch(self, titles: list[str]) -> dict[str, Reference | None]:
        return {title: self._median(title) for title in titles}

    def _median(self, title: str) -> Reference | None:
        params = {"gameId": self._game_id, "title": title, "limit": str(SALES_COUNT)}
        payload = self._transport.send(
            LAST_SALES_ENDPOINT, "GET", PATH, params, unreadable=RetryableMarketError
        )
        prices = sorted(parse_sale_prices(payload))
        if not prices:
            return None
        middle = len(prices) // 2
        median = prices[middle] if len(prices) % 2 else (prices[middle - 1] + prices[middle]) // 2
        return Reference(LAST_SALES, median, len(prices), now()) if median > 0 else None


def parse_sale_prices(payload: object) -> list[int]:
    """The sales' prices in cents; RetryableMarketError naming a defect's JSON path."""
    if not isinstance(payload, dict):
        raise _malformed("response body", "an object", payload)
    sales = payload.get("sales", MISSING)
    if not isinstance(sales, list):
        raise _malformed("sales", "a list", sales)
    prices = []
    for index, sale in enumerate(sales[:SALES_COUNT]):
        if not isinstance(sale, dict):
            raise _malformed(f"sales[{index}]", "an object", sale)
        prices.append(_cents(sale.get("price", MISSING), f"sales[{index}].price"))
    return prices


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


def _malformed(path: str, expected: str, value: object) -> RetryableMarketError:
    return RetryableMarketError(f"last sales: {path}: expected {expected}, got {describe(value)}")
