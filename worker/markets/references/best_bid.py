"""The `best_bid` reference: the best standing buy order for a title, from DMarket's
aggregated prices (`POST /marketplace-api/v1/aggregated-prices`).

One request per page at most: the page's titles not in the fleet's cache go in one body
(a page holds at most 100 listings, so at most 100 titles, DMarket's limit per request).
A best bid is what a seller gets now, before DMarket's sell fee.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from worker.domain.listing import Item
from worker.domain.reference import BEST_BID, Reference
from worker.errors import RetryableMarketError
from worker.markets.dmarket import bounds
from worker.markets.dmarket.transport import AGGREGATED_PRICES, DMarketTransport
from worker.markets.dmarket.v1_items import MISSING, describe
from worker.markets.references.cache import ReferenceCache
from worker.markets.references.source import by_title, now

PATH: Final = "/marketplace-api/v1/aggregated-prices"


class BestBidReference:
    """Best buy orders of one game, looked up through the fleet's cache."""

    kind = BEST_BID

    def __init__(self, transport: DMarketTransport, game_id: str, cache: ReferenceCache) -> None:
        self._transport = transport
        self._game_id = game_id
        self._cache = cache

    def references(self, items: Sequence[Item]) -> list[Reference | None]:
        return by_title(items, lambda titles: self._cache.lookup(titles, self._fetch))

    def refresh(self, items: Sequence[Item]) -> list[Reference | None]:
        return by_title(items, lambda titles: self._cache.refresh(titles, self._fetch))

    def _fetch(self, titles: list[str]) -> dict[str, Reference | None]:
        body = {"filter": {"game": self._game_id, "titles": titles}, "limit": "100", "cursor": ""}
        payload = self._transport.send(
            AGGREGATED_PRICES, "POST", PATH, body=body, unreadable=RetryableMarketError
        )
        return parse_aggregated_prices(payload)


def parse_aggregated_prices(payload: object) -> dict[str, Reference | None]:
    """title -> its best bid (None: no buy order); RetryableMarketError naming a defect's
    JSON path, since a lookup asked again may well be answered properly."""
    if not isinstance(payload, dict):
        raise _malformed("response body", "an object", payload)
    entries = payload.get("aggregatedPrices", MISSING)
    if not isinstance(entries, list):
        raise _malformed("aggregatedPrices", "a list", entries)
    if len(entries) > bounds.LISTINGS_MAX:
        raise RetryableMarketError(
            f"aggregated prices: aggregatedPrices: {len(entries)} entries, over "
            f"{bounds.LISTINGS_MAX}"
        )
    fetched_at = now()
    found: dict[str, Reference | None] = {}
    for index, entry in enumerate(entries):
        path = f"aggregatedPrices[{index}]"
        if not isinstance(entry, dict):
            raise _malformed(path, "an object", entry)
        title = entry.get("title", MISSING)
        if not isinstance(title, str):
            raise _malformed(f"{path}.title", "a string", title)
        best = entry.get("orderBestPrice", MISSING)
        if not isinstance(best, dict):
            raise _malformed(f"{path}.orderBestPrice", "an object", best)
        cents = _integer(best.get("Amount", MISSING), f"{path}.orderBestPrice.Amount")
        orders = _integer(entry.get("orderCount", MISSING), f"{path}.orderCount")
        # No buy order: no reference (an "Amount" of "0" would fake a discount).
        found[title] = Reference(BEST_BID, cents, orders, fetched_at) if cents and orders else None
    return found


def _integer(value: object, path: str) -> int:
    """A count or an amount in cents, of at most PRICE_MAX_DIGITS digits: past that it is
    no real one, and is not converted."""
    integer = bounds.integer_of(value)
    if integer is not None:
        return integer
    expected = f"a string of a non-negative integer of at most {bounds.PRICE_MAX_DIGITS} digits"
    raise _malformed(path, expected, value)


def _malformed(path: str, expected: str, value: object) -> RetryableMarketError:
    return RetryableMarketError(
        f"aggregated prices: {path}: expected {expected}, got {describe(value)}"
    )
