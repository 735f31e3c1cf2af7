"""A market's sell fees: a default, and reduced fees for some titles inside a price band.

DMarket publishes a default fee and a daily list of titles whose fee is lower while their
sale price lies in a band, each reduction until its own expiry. A `FeeTable` holds one such
answer; `fee_for` says which fee a sale pays and how many cents that is. Fractions are kept
as basis points (1 bp = 0.01 %), integers, so a fee is compared and stored exactly.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Final

from worker.errors import InvalidInput

# Basis points in the whole price: a fee of 10,000 bp takes all of it.
BPS_WHOLE: Final = 10_000
# Where the fee a sale pays came from.
REDUCED: Final = "reduced"
DEFAULT: Final = "default"
CONFIGURED: Final = "configured"
# A second market's seller fee (worker.domain.reference.SECOND_MARKETS), named by the market.
SKINPORT_SELLER: Final = "skinport"
FEE_SOURCES: Final = (REDUCED, DEFAULT, CONFIGURED, SKINPORT_SELLER)
# How scan_opportunities stores a find's fee source: a smallint, since the table is big.
FEE_SOURCE_CODES: Final = {REDUCED: 1, DEFAULT: 2, CONFIGURED: 3, SKINPORT_SELLER: 4}
FEE_SOURCE_NAMES: Final = {code: name for name, code in FEE_SOURCE_CODES.items()}
# A table is asked for again at least this often: DMarket's reduced list is daily.
TABLE_LIFE_SECONDS: Final = 24 * 60 * 60.0


def bps_of(fraction: float) -> int:
    """A fraction of a price (0..1) in basis points, rounded to the nearest one."""
    if not (isinstance(fraction, int | float) and 0 <= fraction <= 1):
        raise InvalidInput(f"fee fraction: must be from 0 to 1, got {fraction!r}")
    return round(fraction * BPS_WHOLE)


def fee_cents(sale_price_cents: int, bps: int, min_amount_cents: int) -> int:
    """The fee on a sale: `bps` of its price rounded UP to a whole cent (a fee is never
    understated by rounding), and never below `min_amount_cents`."""
    if sale_price_cents < 0:
        raise InvalidInput(f"sale price: must be >= 0 cents, got {sale_price_cents}")
    # Integer ceiling: a float's product could land a cent off on large prices.
    return max(-(-sale_price_cents * bps // BPS_WHOLE), min_amount_cents)


def _check_bps(name: str, bps: int) -> None:
    if isinstance(bps, bool) or not isinstance(bps, int) or not 0 <= bps <= BPS_WHOLE:
        raise InvalidInput(f"{name}: must be whole basis points from 0 to {BPS_WHOLE}, got {bps!r}")


def _check_cents(name: str, cents: int) -> None:
    if isinstance(cents, bool) or not isinstance(cents, int) or cents < 0:
        raise InvalidInput(f"{name}: must be whole cents >= 0, got {cents!r}")


@dataclass(frozen=True)
class ReducedFee:
    """A lower fee for one title while its sale price is in [min, max] cents, until
    `expires_at` (Unix seconds)."""

    title: str
    bps: int
    min_price_cents: int
    max_price_cents: int
    expires_at: float

    def __post_init__(self) -> None:
        _check_bps("reduced fee", self.bps)
        _check_cents("reduced fee's min price", self.min_price_cents)
        _check_cents("reduced fee's max price", self.max_price_cents)
        if self.min_price_cents > self.max_price_cents:
            raise InvalidInput(
                f"reduced fee of {self.title!r}: min price {self.min_price_cents} is above "
                f"max price {self.max_price_cents}"
            )
        if not math.isfinite(self.expires_at):
            raise InvalidInput(f"reduced fee of {self.title!r}: expiry must be a finite time")

    def applies(self, sale_price_cents: int, now: float) -> bool:
        """Whether a sale at this price, at `now`, pays this fee (its title matched)."""
        return self.min_price_cents <= sale_price_cents <= self.max_price_cents and (
            now < self.expires_at
        )


@dataclass(frozen=True)
class AppliedFee:
    """The fee one sale pays: its rate, where the rate came from, and its cents."""

    bps: int
    source: str
    cents: int


@dataclass(frozen=True)
class FeeTable:
    """A market's fees as read at `fetched_at` (Unix seconds).

    `default_source`: DEFAULT for a market's published default, CONFIGURED for the one
    fee marketscan is configured with (`configured`).
    """

    default_bps: int
    min_amount_cents: int
    reduced: tuple[ReducedFee, ...]
    fetched_at: float
    default_source: str = DEFAULT
    # title -> its reduced fees: a page judges up to 100 listings against a list of
    # thousands of titles.
    _by_title: dict[str, tuple[ReducedFee, ...]] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        _check_bps("default fee", self.default_bps)
        _check_cents("minimum fee", self.min_amount_cents)
        if self.default_source not in (DEFAULT, CONFIGURED):
            raise InvalidInput(
                f"default fee's source: must be default or configured, got {self.default_source!r}"
            )
        by_title: dict[str, list[ReducedFee]] = {}
        for reduced in self.reduced:
            by_title.setdefault(reduced.title, []).append(reduced)
        object.__setattr__(
            self, "_by_title", {title: tuple(fees) for title, fees in by_title.items()}
        )

    @classmethod
    def configured(cls, fraction: float, fetched_at: float | None = None) -> FeeTable:
        """The one configured fee (MARKETSCAN_FEE, a scan's frozen `fee`) for every sale."""
        return cls(
            default_bps=bps_of(fraction),
            min_amount_cents=0,
            reduced=(),
            fetched_at=time.time() if fetched_at is None else fetched_at,
            default_source=CONFIGURED,
        )

    def fee_for(self, title: str, sale_price_cents: int, now: float) -> AppliedFee:
        """The fee a sale of `title` at `sale_price_cents` pays at `now` (Unix seconds):
        its rate (`rate_for`) and its cents."""
        bps, source = self.rate_for(title, sale_price_cents, now)
        return AppliedFee(bps, source, fee_cents(sale_price_cents, bps, self.min_amount_cents))

    def rate_for(self, title: str, sale_price_cents: int, now: float) -> tuple[int, str]:
        """The rate (basis points) a sale of `title` at `sale_price_cents` pays at `now`,
        and its source.

        A reduced fee of the title whose band holds the price and that has not expired;
        where several do (overlapping bands), the highest of them, so a find is never
        judged on a fee lower than one the market may charge. Else the default.
        """
        reductions = self._by_title.get(title)
        applying = (
            [reduced.bps for reduced in reductions if reduced.applies(sale_price_cents, now)]
            if reductions
            else None
        )
        if applying:
            return max(applying), REDUCED
        return self.default_bps, self.default_source

    def expires_at(self) -> float:
        """When this table should be read again (Unix seconds): the first reduced fee to
        expire after it was fetched, or TABLE_LIFE_SECONDS after the fetch if sooner."""
        latest = self.fetched_at + TABLE_LIFE_SECONDS
        upcoming = [r.expires_at for r in self.reduced if r.expires_at > self.fetched_at]
        return min([latest, *upcoming])


@dataclass(frozen=True)
class BandedFee:
    """A second market's seller fee: `bps` of a sale, `high_bps` of one above
    `high_above_cents` (Skinport: 8 %, 6 % above $1,000), named `source` on a find."""

    source: str
    bps: int
    high_bps: int
    high_above_cents: int

    def __post_init__(self) -> None:
        _check_bps(f"{self.source} fee", self.bps)
        _check_bps(f"{self.source} high fee", self.high_bps)
        _check_cents(f"{self.source} high fee's threshold", self.high_above_cents)

    def fee_for(self, sale_price_cents: int) -> AppliedFee:
        """The fee a sale at this price pays, rounded up to a cent."""
        bps = self.high_bps if sale_price_cents > self.high_above_cents else self.bps
        return AppliedFee(bps, self.source, fee_cents(sale_price_cents, bps, 0))
