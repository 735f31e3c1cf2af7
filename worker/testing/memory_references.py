"""The reference-price family's memory stub: prices from a dict, every lookup recorded.

It keeps the rules tests/contract/test_reference.py holds every reference source to, so a
test can judge pages against known prices without DMarket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from worker.domain.listing import Item
from worker.domain.reference import BEST_BID, Reference
from worker.errors import RetryableMarketError
from worker.markets.references.source import by_title, now


class MemoryReferenceSource:
    """References from a dict of title -> (cents, depth), recording every lookup; like the
    fleet's cache, a title once answered is not asked for again, unless refreshed.

    `fail_next(n)`: the next n lookups raise RetryableMarketError, as a broken body would.
    """

    def __init__(
        self, prices: Mapping[str, tuple[int, int]] | None = None, kind: str = BEST_BID
    ) -> None:
        self.kind = kind
        self.prices = dict(prices or {})
        self.lookups: list[list[str]] = []
        self._failures_left = 0
        self._answered: dict[str, Reference | None] = {}

    def fail_next(self, lookups: int = 1) -> None:
        self._failures_left = lookups

    def references(self, items: Sequence[Item]) -> list[Reference | None]:
        return by_title(items, self._lookup)

    def refresh(self, items: Sequence[Item]) -> list[Reference | None]:
        return by_title(items, lambda titles: self._lookup(titles, anew=True))

    def _lookup(self, titles: list[str], anew: bool = False) -> dict[str, Reference | None]:
        missing = titles if anew else [title for title in titles if title not in self._answered]
        if missing:
            self.lookups.append(missing)
            if self._failures_left > 0:
                self._failures_left -= 1
                raise RetryableMarketError("memory reference source: told to fail")
            fetched_at = now()
            for title in missing:
                price = self.prices.get(title)
                self._answered[title] = (
                    None if price is None else Reference(self.kind, *price, fetched_at)
                )
        return {title: self._answered[title] for title in titles}
