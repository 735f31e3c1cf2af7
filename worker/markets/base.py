"""What every market offers: pages of items behind an opaque cursor."""

from __future__ import annotations

from typing import Protocol

# The values a market lists live in the domain; every market speaks them.
from worker.domain.listing import GAME_IDS, MAX_PAGE_SIZE, Item, Page

__all__ = ["GAME_IDS", "MAX_PAGE_SIZE", "Item", "MarketSource", "Page"]


class MarketSource(Protocol):
    """A cursor-paginated item listing.

    `fetch_page` raises RetryableMarketError (429, 5xx, timeouts; with the server's
    requested wait when it gave one) or PermanentMarketError (other 4xx, malformed body).
    """

    def fetch_page(self, cursor: str | None, limit: int) -> Page: ...

    def inspect(self, item: Item) -> Item:
        """Per-item work before an item is judged (details, history); the slow part of a page."""
        ...

    def close(self) -> None: ...
