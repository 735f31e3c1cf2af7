"""Pages of the live listing as v2 offers: ordered by createdAt, walked by a key-set cursor.

The order is (createdAt as served, in whole seconds; offerId), both in the asked direction,
newest first by default. A cursor names the last offer served, (createdAt second, offerId),
and the next page is the offers strictly after it in the order as the listing stands when
that page is asked for: offers listed above the cursor meanwhile shift nothing below it,
while an offer that turns visible late below it is served in its place.

Only `orderBy=createdAt` (or none) is served: the live listing refuses price, title and
float, which the fake serves only for its static listing.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from worker.testing.dmarket_live import LiveOffer

CREATED_AT_ORDER = "createdAt"
DESCENDING = "desc"


class LiveQueryRefused(Exception):
    """A query the live listing answers with 400."""


@dataclass(frozen=True)
class LivePage:
    """One page: its offers as served, the cursor to the next ("" at the end) and the total
    of visible offers within the price filter."""

    items: list[dict[str, Any]]
    cursor: str
    total: int


def live_offers_page(offers: Sequence[LiveOffer], query: Mapping[str, str], now: float) -> LivePage:
    """The page `query` asks for of the `offers` visible at `now`; LiveQueryRefused if the
    live listing would not serve it (the query's other checks are the caller's)."""
    order_by = query.get("orderBy", CREATED_AT_ORDER)
    if order_by != CREATED_AT_ORDER:
        raise LiveQueryRefused(f"orderBy: the live listing is ordered by createdAt, not {order_by}")
    descending = query.get("orderDir", DESCENDING) == DESCENDING
    low = int(query.get("priceFrom", 0))
    high = int(query["priceTo"]) if "priceTo" in query else None
    matching = [
        offer
        for offer in offers
        if low <= (cents := offer.price_cents_at(now)) and (high is None or cents <= high)
    ]
    ordered = sorted(matching, key=_key, reverse=descending)
    if query.get("cursor"):
        after = _cursor_key(query["cursor"], descending)
        ordered = [
            offer
            for offer in ordered
            if (_key(offer) < after if descending else _key(offer) > after)
        ]
    limit = int(query["limit"])
    page = ordered[:limit]
    more = len(ordered) > limit
    return LivePage(
        items=[offer.offer_at(now) for offer in page],
        cursor=_cursor_of(page[-1], descending) if more else "",
        total=len(matching),
    )


def _key(offer: LiveOffer) -> tuple[int, str]:
    return offer.created_second, offer.offer_id


def _cursor_of(offer: LiveOffer, descending: bool) -> str:
    direction = "desc" if descending else "asc"
    text = f"{direction}:{offer.created_second}:{offer.offer_id}"
    return base64.urlsafe_b64encode(text.encode()).decode()


def _cursor_key(cursor: str, descending: bool) -> tuple[int, str]:
    """The (second, offerId) a cursor of this direction names; refused if it is not one."""
    try:
        direction, second, offer_id = base64.urlsafe_b64decode(cursor).decode().split(":", 2)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise LiveQueryRefused(f"unknown cursor {cursor!r}") from None
    if not second.isdecimal() or direction not in ("asc", "desc"):
        raise LiveQueryRefused(f"unknown cursor {cursor!r}")
    if (direction == "desc") != descending:
        raise LiveQueryRefused(f"cursor: was made for orderDir={direction}")
    return int(second), offer_id
