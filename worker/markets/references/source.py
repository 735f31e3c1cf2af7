"""The reference-price family: what a page's listings are judged against.

A `ReferenceSource` gives one `Reference` (or None: no buy order, no sale) per listing of a
page, from the fleet's cache when it holds one (`references`), or asked anew whatever the
cache holds, and cached over it (`refresh`: a reference past its TTL is fetched again
before a find is stored). Implementations: `best_bid` (worker.markets.references.best_bid),
`last_sales` (worker.markets.references.last_sales), `suggested` (the listing's own figure,
here) and `MemoryReferenceSource`, the stub for tests (worker.testing.memory_references). A
lookup that fails raises RetryableMarketError: the page's listings wait for it, within the
retry policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from worker.domain.listing import Item
from worker.domain.reference import SUGGESTED, Reference


class ReferenceSource(Protocol):
    """Reference prices for the listings of one page, in the listings' order."""

    kind: str

    def references(self, items: Sequence[Item]) -> list[Reference | None]: ...

    def refresh(self, items: Sequence[Item]) -> list[Reference | None]: ...


def now() -> datetime:
    return datetime.now(UTC)


def by_title(
    items: Sequence[Item], lookup: Callable[[list[str]], Mapping[str, Reference | None]]
) -> list[Reference | None]:
    """Each listing's reference from one lookup of the page's titles, each title once."""
    titles = list(dict.fromkeys(item.title for item in items))
    found = lookup(titles) if titles else {}
    return [found.get(item.title) for item in items]


class SuggestedReference:
    """The listing's own suggested price (DMarket v1, the simulated market): no request."""

    kind = SUGGESTED

    def __init__(self, clock: Callable[[], datetime] = now) -> None:
        self._clock = clock

    def references(self, items: Sequence[Item]) -> list[Reference | None]:
        fetched_at = self._clock()
        return [
            None
            if item.reference_price_cents is None
            else Reference(SUGGESTED, item.reference_price_cents, None, fetched_at)
            for item in items
        ]

    def refresh(self, items: Sequence[Item]) -> list[Reference | None]:
        # Nothing is cached: the listing's own figure is all there is to read again.
        return self.references(items)
