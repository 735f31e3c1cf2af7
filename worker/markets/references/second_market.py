"""A reference read from a second market's whole price list (worker.domain.price_list).

A DMarket listing is judged against what listing the same title on that market brings: its
lowest listing less an undercut (a seller who wants to sell first lists a cent below), in
integer cents. Every page's titles are looked up in the fleet's read of the list
(worker.markets.second_market.cache): one read per life for the whole fleet, never
a request per page. A title the market does not list, or lists with nothing for sale, is
unreferenced, as is one whose lowest listing is no more than the undercut.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from worker.domain.listing import Item
from worker.domain.price_list import MarketPrice
from worker.domain.reference import Reference
from worker.markets.references.source import by_title
from worker.markets.second_market.cache import SharedPriceList
from worker.markets.second_market.source import PriceListSource


class SecondMarketReference:
    """References of kind `kind` from `source`'s list, read through the fleet's `shared`."""

    def __init__(
        self, kind: str, shared: SharedPriceList, source: PriceListSource, undercut_cents: int
    ) -> None:
        self.kind = kind
        self._shared = shared
        self._source = source
        self._undercut_cents = undercut_cents

    def references(self, items: Sequence[Item]) -> list[Reference | None]:
        return by_title(items, self._lookup)

    def refresh(self, items: Sequence[Item]) -> list[Reference | None]:
        # The list's life is its only freshness: a read past it is read again by the lookup
        # itself, and asking the market sooner would only get its own 5-minute cache.
        return self.references(items)

    def _lookup(self, titles: list[str]) -> dict[str, Reference | None]:
        fetched_unix, prices = self._shared.prices(titles, self._source)
        fetched_at = datetime.fromtimestamp(fetched_unix, UTC)
        return {title: self._reference(prices.get(title), fetched_at) for title in titles}

    def _reference(self, price: MarketPrice | None, fetched_at: datetime) -> Reference | None:
        if price is None or price.min_price_cents is None:
            return None
        sale_cents = price.min_price_cents - self._undercut_cents
        if sale_cents <= 0:
            return None
        return Reference(self.kind, sale_cents, None, fetched_at, sales_7d=price.volume_7d)
