"""DMarket's v2 offers body (`GET /marketplace-api/v2/offers`) read into a `Page`, every
defect named by its JSON path, as the v1 listing's parser does.

Shape: `{"items": [{"offerId", "priceCents": <int>, "createdAt", "locked",
"attributes": {"title", "gameId", "categoryPath", "tradable", "cs2Attributes": {...}}}],
"total": <int>, "cursor": "<empty at the end>"}`. v2 carries no suggested price: an item's
reference comes from the scan's reference source (worker.markets.references.registry).
"""

from __future__ import annotations

from typing import Any

from worker.markets.base import Item, Page
from worker.markets.dmarket.v1_items import (
    MISSING,
    TOTAL_CAP,
    count_at,
    is_absent,
    is_small_scalar,
    json_object,
    listing_cents,
    listing_id,
    listing_title,
    listings_of,
    malformed,
    next_cursor_of,
    outsized_number,
)
from worker.markets.fleet.response_body import OutsizedNumber

# The attributes worth keeping on an item (flat, small); the rest is dropped.
ATTRIBUTE_FIELDS = ("gameId", "categoryPath", "tradable")
CS2_ATTRIBUTE_FIELDS = ("exterior", "floatValue", "paintSeed")
OFFER_FIELDS = ("createdAt", "locked")


def parse_offers(payload: object) -> Page:
    """The page in a decoded v2 offers body; PermanentMarketError if it is not one."""
    body = json_object(payload, "response body")
    items, unusable = listings_of(body, "items", _offer)
    total = body.get("total", MISSING)
    counted = None if total is MISSING or total is None else count_at(total, "total")
    return Page(
        items=items,
        next_cursor=next_cursor_of(body),
        total=counted,
        total_is_lower_bound=counted is not None and counted >= TOTAL_CAP,
        unusable=unusable,
    )


def _offer(raw: object, path: str) -> Item | None:
    """The offer as an Item; None when its price is `""` or missing (walked past, counted)."""
    fields = json_object(raw, path)
    offer_id = listing_id(fields.get("offerId", MISSING), f"{path}.offerId")
    price = fields.get("priceCents", MISSING)
    if is_absent(price):
        return None
    if isinstance(price, OutsizedNumber):
        raise outsized_number(f"{path}.priceCents")
    if isinstance(price, bool) or not isinstance(price, int) or price < 0:
        raise malformed(f"{path}.priceCents", "a non-negative integer", price)
    attributes = json_object(fields.get("attributes", MISSING), f"{path}.attributes")
    title = listing_title(attributes.get("title", MISSING), f"{path}.attributes.title")
    return Item(
        item_id=offer_id,
        title=title,
        price_cents=listing_cents(price, f"{path}.priceCents"),
        reference_price_cents=None,
        extra=_extra(fields, attributes, f"{path}.attributes.cs2Attributes"),
    )


def _extra(
    fields: dict[str, object], attributes: dict[str, object], cs2_path: str
) -> dict[str, Any]:
    """The flat descriptors of an offer, under the names the v1 listing's `extra` uses."""
    picked: dict[str, object] = {name: fields.get(name) for name in OFFER_FIELDS}
    picked.update({name: attributes.get(name) for name in ATTRIBUTE_FIELDS})
    cs2 = attributes.get("cs2Attributes", MISSING)
    if cs2 is not MISSING and cs2 is not None:
        cs2_fields = json_object(cs2, cs2_path)
        picked.update({name: cs2_fields.get(name) for name in CS2_ATTRIBUTE_FIELDS})
    return {
        name: value
        for name, value in picked.items()
        if value is not None and is_small_scalar(value)
    }
