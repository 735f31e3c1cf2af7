"""What every market offers: pages of items behind an opaque cursor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from worker.errors import InvalidInput

# DMarket's listing returns at most 100 objects per request; the simulated market follows it.
MAX_PAGE_SIZE = 100

# DMarket's game ids, by the names users type.
GAME_IDS = {
    "csgo": "a8db",
    "cs2": "a8db",
    "dota2": "9a92",
    "tf2": "tf2",
    "rust": "rust",
}


def check_page_limit(limit: int) -> None:
    """Refuse a page size no market serves: a page of 0 items would never reach the end."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"limit: must be between 1 and {MAX_PAGE_SIZE}, got {limit!r}")


@dataclass(frozen=True)
class Item:
    """One listed item; prices are integer US cents."""

    item_id: str
    title: str
    price_cents: int
    reference_price_cents: int | None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """One page of a listing. `next_cursor` None means this was the last page.

    `total_is_lower_bound`: the market says its total is capped, so the listing holds at
    least `total` items, maybe more.
    """

    items: tuple[Item, ...]
    next_cursor: str | None
    total: int | None
    total_is_lower_bound: bool = False


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
