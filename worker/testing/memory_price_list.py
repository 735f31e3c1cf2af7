"""The second-market family's memory stub: a price list from a dict, every fetch counted.

It keeps the rules tests/contract/test_price_list.py holds every price-list source to.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from worker.domain.price_list import MarketPrice, PriceList
from worker.errors import RetryableMarketError


class MemoryPriceList:
    """A market listing `prices` (title -> (min price cents or None, 7-day volume or None))
    in USD; `fail_next(n)`: the next n fetches raise RetryableMarketError."""

    def __init__(
        self,
        prices: Mapping[str, tuple[int | None, int | None]] | None = None,
        market: str = "memory",
    ) -> None:
        self.market = market
        self.prices = dict(prices or {})
        self.fetches = 0
        self._failures_left = 0

    def fail_next(self, fetches: int = 1) -> None:
        self._failures_left = fetches

    def fetch(self) -> PriceList:
        self.fetches += 1
        if self._failures_left > 0:
            self._failures_left -= 1
            raise RetryableMarketError(f"{self.market}: price list told to fail")
        return PriceList(
            market=self.market,
            currency="USD",
            fetched_at=time.time(),
            prices={title: MarketPrice(*price) for title, price in self.prices.items()},
        )
