"""What every market offers: pages of items behind an opaque cursor."""

from __future__ import annotations

from typing import Protocol

from worker.domain.listing import GAME_IDS, MAX_PAGE_SIZE, Item, Page
from worker.errors import InvalidInput

__all__ = ["GAME_IDS", "MAX_PAGE_SIZE", "Item", "MarketSource", "Page", "check_page_limit"]


def check_page_limit(limit: int) -> None:
    """Refuse a page size no market serves: a page of 0 items would never reach the end."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"limit: must be between 1 and {MAX_PAGE_SIZE}, got {limit!r}")


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
