"""A market whose pages come with the scan's reference prices looked up.

The listing is fetched, then its titles are looked up (worker.markets.references.source).
A lookup that fails is retryable, and the fetched page is kept for the retry, so the
listings wait for their references without asking the market for the page again.
"""

from __future__ import annotations

from dataclasses import replace

from worker.domain.listing import Item, Page
from worker.markets.base import MarketSource
from worker.markets.references.source import ReferenceSource


class ReferencedMarket:
    """`market`'s pages, each listing judged against `source`'s reference or none."""

    def __init__(self, market: MarketSource, source: ReferenceSource) -> None:
        self.market = market
        self.source = source
        self._kept: tuple[str | None, int, Page] | None = None

    def fetch_page(self, cursor: str | None, limit: int) -> Page:
        kept = self._kept
        if kept is not None and kept[:2] == (cursor, limit):
            page = kept[2]
        else:
            page = self.market.fetch_page(cursor, limit)
            self._kept = (cursor, limit, page)
        references = self.source.references(page.items)
        self._kept = None
        # A listing without a reference keeps none, not the listing's own figure: a v1
        # suggested price must not stand in for a best bid the market does not have.
        items = tuple(
            replace(
                item,
                reference=reference,
                reference_price_cents=None if reference is None else reference.price_cents,
            )
            for item, reference in zip(page.items, references, strict=True)
        )
        return replace(page, items=items)

    def inspect(self, item: Item) -> Item:
        return self.market.inspect(item)

    def close(self) -> None:
        self.market.close()
