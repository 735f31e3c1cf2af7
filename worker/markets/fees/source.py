"""The fee family: what a sale on a market pays, as a `FeeTable` (worker.domain.fees).

A `FeeSource` gives the market's table; judging asks it `fee_for(title, sale price, now)`.
Implementations: `dmarket` (worker.markets.fees.dmarket: DMarket's published default and
reduced fees, fetched once for the fleet and kept until the table expires), `configured`
and `simulated` (worker.markets.fees.configured: the one configured fee; a table given in
code) and `MemoryFees`, the stub for tests (worker.testing.memory_fees).
tests/contract/test_fee_source.py holds each to this contract.
"""

from __future__ import annotations

from typing import Protocol

from worker.domain.fees import FeeTable


class FeeSource(Protocol):
    """A market's fees, as one table."""

    def table(self) -> FeeTable:
        """The market's fee table, never one past its `expires_at()` when asked.

        Its `default_bps` and `min_amount_cents` are the market's default fee and floor,
        its `reduced` fees every title's lower fee inside a price band (expired ones
        included as the market listed them: `fee_for` passes them by), `fetched_at` when
        it was read. A table that cannot be read raises RetryableMarketError (naming the
        defect's JSON path where there is one) and is not kept: a source never answers
        with a table holding a wrong fee. Cheap to call once per page: a remote table is
        asked for at most once per expiry by the whole fleet.
        """
        ...
