"""What the loopback DMarket serves as its customized fees (`GET /exchange/v1/customized-fees`):
a default fee and reduced fees of titles inside a price band, paginated by limit/offset,
and the oracle of which fee a sale pays, computed here without worker.domain.fees.

Shaped as worker.markets.fees.dmarket reads DMarket: `fraction` a decimal string, amounts
integer cents in strings, `expiresAt` Unix seconds, served as an integer for even
positions of the list and as a string of one for odd positions (DMarket's spec allows
either), so both forms are read on every walk of a list of two or more.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any, NamedTuple

from worker.testing.dmarket_v2_replies import error_body_for

FEES_PATH = "/exchange/v1/customized-fees"
MAX_FEES_LIMIT = 100
OFFER_TYPES = ("dmarket", "p2p")


@dataclass(frozen=True)
class FakeReducedFee:
    """A title's lower fee for sales priced in [min, max] cents, until `expires_at`.

    `fraction` is served as given: a test may give one no real fee has ("1.5").
    """

    title: str
    fraction: str
    min_price_cents: int
    max_price_cents: int
    expires_at: int


@dataclass(frozen=True)
class FakeFees:
    """The fees the fake publishes: a default (fraction, floor in cents) and reduced fees."""

    fraction: str = "0.05"
    min_amount_cents: int = 1
    reduced: tuple[FakeReducedFee, ...] = ()

    def page(self, offset: int, limit: int) -> dict[str, Any]:
        """The answer's body for one page of the reduced fees."""
        listed = [
            {
                "title": fee.title,
                "fraction": fee.fraction,
                "minPrice": str(fee.min_price_cents),
                "maxPrice": str(fee.max_price_cents),
                "expiresAt": fee.expires_at if position % 2 == 0 else str(fee.expires_at),
            }
            for position, fee in enumerate(self.reduced)
        ]
        return {
            "defaultFee": {"fraction": self.fraction, "minAmount": str(self.min_amount_cents)},
            "reducedFees": listed[offset : offset + limit],
        }

    def fee_for(self, title: str, price_cents: int, now: float) -> Oracle:
        """Which fee a sale of `title` at `price_cents` pays at `now`, and its cents (the
        rate's share of the price rounded up, at least the minimum): the oracle a source's
        table is checked against. Overlapping bands: the highest of their fees."""
        fractions = [
            Decimal(fee.fraction)
            for fee in self.reduced
            if fee.title == title
            and fee.min_price_cents <= price_cents <= fee.max_price_cents
            and now < fee.expires_at
        ]
        fraction, source = (
            (max(fractions), "reduced") if fractions else (Decimal(self.fraction), "default")
        )
        bps = int((fraction * 10_000).to_integral_value(rounding=ROUND_CEILING))
        cents = int((Decimal(price_cents) * bps / 10_000).to_integral_value(rounding=ROUND_CEILING))
        return Oracle(bps, source, max(cents, self.min_amount_cents))


class Oracle(NamedTuple):
    """The fee a sale pays: basis points, "reduced" or "default", cents."""

    bps: int
    source: str
    cents: int


def fees_answer(
    query: Mapping[str, str], fees: FakeFees, broken_body: bytes | None
) -> tuple[int, bytes]:
    """The answer to a GET of customized fees: (status, body). `broken_body`: served as
    the body of every answer the query does not refuse, whatever it holds."""
    problem = fees_query_problem(query)
    if problem is not None:
        return 400, error_body_for(FEES_PATH, problem)
    if broken_body is not None:
        return 200, broken_body
    limit = int(query.get("limit", str(MAX_FEES_LIMIT)))
    offset = int(query.get("offset", "0"))
    return 200, json.dumps(fees.page(offset, limit)).encode()


def fees_query_problem(query: Mapping[str, str]) -> str | None:
    """What the real endpoint would reject in this query, or None."""
    if not query.get("gameId"):
        return "gameId: is required"
    if query.get("offerType") not in OFFER_TYPES:
        return f"offerType: must be one of {', '.join(OFFER_TYPES)}"
    limit = query.get("limit", str(MAX_FEES_LIMIT))
    if not limit.isdecimal() or not 1 <= int(limit) <= MAX_FEES_LIMIT:
        return f"limit: must be from 1 to {MAX_FEES_LIMIT}, got {limit!r}"
    offset = query.get("offset", "0")
    if not offset.isdecimal():
        return f"offset: must be a non-negative integer, got {offset!r}"
    return None
