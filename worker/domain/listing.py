"""What a market lists: items with integer-cent prices, in pages behind an opaque cursor."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from worker.domain.reference import Reference

if TYPE_CHECKING:
    from worker.domain.evidence import Evidence

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


# A listing's trade lock, as its `extra` holds it. v1: `lockStatus` (whether it is locked)
# and `tradeLockDuration` (seconds the lock has left); v2: `locked`, with no length.
LOCK_STATUS: Final = "lockStatus"
TRADE_LOCK_DURATION: Final = "tradeLockDuration"
LOCKED: Final = "locked"
SECONDS_PER_DAY: Final = 86_400


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
    # Both exits' references and the fees a sale pays, once looked up (worker.domain.
    # appraisal); None where the market gives none (the listing's own price is judged).
    evidence: Evidence | None = None


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


def lock_of(item: Item) -> tuple[bool, int | None]:
    """Whether `item` is trade-locked, and for how many days more (rounded up) when the
    market says: a positive `tradeLockDuration` is a lock of that length, whatever
    `lockStatus` says; `lockStatus` or v2's `locked` true is a lock of unknown length.
    Anything but a real `true` is no lock (the parsers refuse other shapes)."""
    seconds = item.extra.get(TRADE_LOCK_DURATION)
    if (
        isinstance(seconds, int | float)
        and not isinstance(seconds, bool)
        and math.isfinite(seconds)
        and seconds > 0
    ):
        return True, math.ceil(seconds / SECONDS_PER_DAY)
    if item.extra.get(LOCK_STATUS) is True or item.extra.get(LOCKED) is True:
        return True, None
    return False, None
