"""The fee family's memory stub: a table given in code, every ask counted.

It keeps the rules tests/contract/test_fee_source.py holds every fee source to, so a test
can judge pages against known fees without DMarket.
"""

from __future__ import annotations

from worker.domain.fees import FeeTable
from worker.errors import RetryableMarketError


class MemoryFees:
    """`table` for every ask; `calls` counts the asks.

    `fail_next(n)`: the next n asks raise RetryableMarketError, as a broken answer would.
    """

    def __init__(self, table: FeeTable) -> None:
        self.fee_table = table
        self.calls = 0
        self._failures_left = 0

    def fail_next(self, asks: int = 1) -> None:
        self._failures_left = asks

    def table(self) -> FeeTable:
        self.calls += 1
        if self._failures_left > 0:
            self._failures_left -= 1
            raise RetryableMarketError("memory fees: told to fail")
        return self.fee_table
