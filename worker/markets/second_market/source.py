"""The second-market family: sources of another market's whole price list.

A `PriceListSource` reads one market's list in one go (worker.domain.price_list). The
fleet keeps the read in the broker's Redis (worker.markets.second_market.cache), and
the `skinport` reference judges DMarket listings against it
(worker.markets.references.second_market). Implementations: Skinport
(worker.markets.second_market.skinport) and `MemoryPriceList`, the stub for tests
(worker.testing.memory_price_list). Adding a market is one module with one such class, and
one line in tests/contract/test_price_list.py.
"""

from __future__ import annotations

from typing import Protocol

from worker.domain.price_list import PriceList


class PriceListSource(Protocol):
    """One market's price list, read whole."""

    market: str

    def fetch(self) -> PriceList:
        """The list as the market answers now: RetryableMarketError naming what failed (the
        market down, a 429, a body not of the documented shape); nothing partial."""
        ...
