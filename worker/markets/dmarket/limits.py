"""DMarket's published request limits per endpoint class and auth mode, in requests/second.

From DMarket's rate-limit article: unsigned requests are counted per IP (market items 2/s,
all other methods together 6/s); signed ones per account (market items 10/s, last sales
6/s, all other methods together 20/s). The fee endpoint's own budget is not used here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Requests per second of each endpoint class; unsigned, last sales is an "other"."""

    market_items: float
    other: float
    last_sales: float


UNSIGNED = Limits(market_items=2.0, other=6.0, last_sales=6.0)
SIGNED = Limits(market_items=10.0, other=20.0, last_sales=6.0)


def limits_for(*, signed: bool) -> Limits:
    return SIGNED if signed else UNSIGNED
