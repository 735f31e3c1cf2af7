"""What a market lists: items with integer-cent prices, in pages behind an opaque cursor."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from worker.domain.reference import Reference

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


@dataclass(frozen=True)
class Item:
    """One listed item; prices are integer US cents.

    `reference`: the scan's reference price for it, once looked up (its price is then
    `reference_price_cents` too); None while only the listing's own figure is known.
    """

    item_id: str
    title: str
    price_cents: int
    reference_price_cents: int | None
    extra: dict[str, Any] = field(default_factory=dict)
    reference: Reference | None = None


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
    # Listings the market sent that cannot be judged (no usable price): counted, walked past.
    unusable: int = 0
    # Why the market's walk ends here although the market did not say so (next_cursor is
    # then None): a repeating cursor, or too many empty pages in a row.
    end_note: str | None = None
