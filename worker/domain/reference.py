"""Reference prices: what a listing is judged against, where it came from, and how deep.

`best_bid` is the best standing buy order (what a seller gets now, before DMarket's sell
fee); `last_sales` what buyers recently paid; `suggested` DMarket's own estimate (v1 only);
`skinport` what listing the item on Skinport brings (a second market: its lowest listing
less an undercut, sold after Steam's trade hold).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from worker.errors import InvalidInput

BEST_BID: Final = "best_bid"
LAST_SALES: Final = "last_sales"
SUGGESTED: Final = "suggested"
SKINPORT: Final = "skinport"
REFERENCE_KINDS: Final = (BEST_BID, LAST_SALES, SUGGESTED, SKINPORT)
# How scan_opportunities stores the kind: a smallint, since the table holds many rows.
REFERENCE_CODES: Final = {BEST_BID: 1, LAST_SALES: 2, SUGGESTED: 3, SKINPORT: 4}
# References read from another market, by kind: the market's name as a trader reads it.
# An item bought on DMarket reaches it through Steam, whose trade protection holds a traded
# CS2 item this many days (since July 2025): the find needs the level's `hold_margin` more.
SECOND_MARKETS: Final = {SKINPORT: "Skinport"}
TRADE_HOLD_DAYS: Final = 7
REFERENCE_NAMES: Final = {code: name for name, code in REFERENCE_CODES.items()}
# DMarket's listing APIs, the default first. A scan's is frozen into its market options
# (`api`) at start: the two APIs' cursors mean nothing to each other.
DMARKET_APIS: Final = ("v2", "v1")
DMARKET_API_OPTION: Final = "api"
# Which references each market (and DMarket listing API) can give, its default first:
# v1 keeps judging against its suggested price unless asked otherwise.
ALLOWED_REFERENCES: Final = {
    "simulated": (SUGGESTED,),
    "dmarket-v2": (BEST_BID, LAST_SALES, SKINPORT),
    "dmarket-v1": (SUGGESTED, BEST_BID, LAST_SALES, SKINPORT),
}


@dataclass(frozen=True)
class Reference:
    """A reference price in integer cents, its kind, its depth and when it was fetched.

    `order_count`: buy orders behind a best bid, or sales behind a median (None: unknown).
    `sales_7d`: how many of the sales read were made in the 7 days before `fetched_at`,
    outliers included (they are trades all the same), or a second market's own count of
    its sales in the last 7 days; `last_sale_at`: when the newest of them was made. Both
    None when the reference is no sales history (a best bid, a suggested price) or was
    cached before they were kept.
    """

    kind: str
    price_cents: int
    order_count: int | None
    fetched_at: datetime
    sales_7d: int | None = None
    last_sale_at: datetime | None = None


def dmarket_api_of(value: object) -> str:
    """A DMarket listing API a scan may be frozen to; InvalidInput naming the option if not."""
    if value not in DMARKET_APIS:
        raise InvalidInput(
            f"market option {DMARKET_API_OPTION} must be one of {', '.join(DMARKET_APIS)}, "
            f"got {value!r}"
        )
    return str(value)


def reference_for(reference: object, market: str, dmarket_api: str) -> str:
    """The reference a scan of `market` uses: `reference`, or the market's default.

    InvalidInput naming the option and its allowed values when the market cannot give it.
    """
    key = market if market != "dmarket" else f"dmarket-{dmarket_api}"
    allowed = ALLOWED_REFERENCES[key]
    if reference is None:
        return allowed[0]
    if reference not in REFERENCE_KINDS:
        raise InvalidInput(
            f"reference must be one of {', '.join(REFERENCE_KINDS)}, got {reference!r}"
        )
    if reference not in allowed:
        where = "the simulated market" if market == "simulated" else f"DMarket {dmarket_api}"
        raise InvalidInput(
            f"reference {reference!r} is not available with {where}: allowed are "
            f"{', '.join(allowed)}"
        )
    return str(reference)
