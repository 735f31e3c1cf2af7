"""Fees given in code: the one configured fee, and the simulated market's table.

`ConfiguredFees` charges every sale the fee marketscan is configured with (MARKETSCAN_FEE,
frozen into a scan as its `fee`), as every scan did before markets' own fees were read.
`SimulatedFees` is the simulated market's stand-in for DMarket's published table: the
scan's fee as the default and a few reduced fees for titles of its catalog, so a simulated
scan is judged by the same rules as a DMarket one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from worker.domain.fees import TABLE_LIFE_SECONDS, FeeTable, ReducedFee, bps_of

# DMarket's smallest fee, one cent, which its default fee states as its `minAmount`.
SIMULATED_MIN_AMOUNT_CENTS: Final = 1
# Titles of the simulated catalog (worker.markets.simulated) with a lower fee inside a
# band of cents: (title, basis points, lowest price, highest price).
SIMULATED_REDUCED: Final = (
    ("AK-47 | Redline (Field-Tested)", 200, 100, 5_000),
    ("AWP | Asiimov (Field-Tested)", 300, 1_000, 50_000),
    ("Karambit | Fade (Factory New)", 100, 10_000, 500_000),
)


class ConfiguredFees:
    """The configured fee for every sale: no minimum, no reduced fee."""

    def __init__(self, fraction: float, clock: Callable[[], float] = time.time) -> None:
        self._table = FeeTable.configured(fraction, fetched_at=clock())

    def table(self) -> FeeTable:
        return self._table


class SimulatedFees:
    """The simulated market's table: `default_fraction` and SIMULATED_REDUCED, whose
    reductions never lapse (each runs a day past every read)."""

    def __init__(self, default_fraction: float, clock: Callable[[], float] = time.time) -> None:
        self._default_bps = bps_of(default_fraction)
        self._clock = clock

    def table(self) -> FeeTable:
        fetched_at = self._clock()
        reduced = tuple(
            ReducedFee(title, bps, low, high, fetched_at + TABLE_LIFE_SECONDS)
            for title, bps, low, high in SIMULATED_REDUCED
        )
        return FeeTable(self._default_bps, SIMULATED_MIN_AMOUNT_CENTS, reduced, fetched_at)
