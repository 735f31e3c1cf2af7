"""What the loopback DMarket serves beside the v1 listing: v2 offers, aggregated prices (the
order book's top) and last sales, shaped as DMarket's spec and official clients show them.

The fake keeps one list of v1-shaped listing objects; a v2 offer is made from each, so a
test lists its items once and walks them through either API.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from worker.testing.dmarket_replies import MAX_LIMIT

OFFERS_PATH = "/marketplace-api/v2/offers"
AGGREGATED_PRICES_PATH = "/marketplace-api/v1/aggregated-prices"
LAST_SALES_PATH = "/trade-aggregator/v1/last-sales"
# marketplace-api answers errors as {"Code", "Message"}; the others as {"code", "message"}.
CAPITALISED_ERRORS_PREFIX = "/marketplace-api/"
MAX_CURSOR_CHARS = 500
MAX_SALES_LIMIT = 20
MAX_TITLES = 100
# Every offer of the fake was listed at this moment (RFC 3339).
CREATED_AT = "2026-07-01T12:00:00Z"
# How far apart the sales given by price alone were made, newest first.
UNDATED_SALES_APART_SECONDS = 60
ORDER_BY = ("price", "title", "float", "createdAt")

# A sale the fake reports: its price in cents, the newest made at the moment it is asked
# for and each other a minute before the one after it (a title sold now and often); or
# (price in cents, Unix seconds) to date it.
FakeSale = int | tuple[int, int]


def offer_of(item: Mapping[str, Any]) -> dict[str, Any]:
    """The v2 offer of a v1 listing object: same id, title and price; cs2 fields from extra."""
    extra = dict(item.get("extra") or {})
    price_text = (item.get("price") or {}).get("USD", "")
    cs2 = {name: extra[name] for name in ("exterior", "floatValue", "paintSeed") if name in extra}
    return {
        "offerId": item["itemId"],
        # A v1 price the fake was told to break ("" or missing) stays broken in v2.
        "priceCents": int(price_text) if str(price_text).isdecimal() else price_text,
        "createdAt": CREATED_AT,
        # A v1 listing the fake was told to lock (dmarket_replies.locked_item) is locked.
        "locked": extra.get("lockStatus") is True,
        "attributes": {
            "title": item["title"],
            "gameId": "a8db",
            "categoryPath": str(extra.get("category", "")),
            "tradable": bool(extra.get("tradable", True)),
            "cs2Attributes": cs2,
        },
    }


def offers_page(page: Mapping[str, Any]) -> dict[str, Any]:
    """The v1 page as v2 offers: `items`, an int `total`, the same cursor."""
    total = page.get("total")
    return {
        "items": [offer_of(item) for item in page["objects"]],
        "total": total["items"] if isinstance(total, dict) else total,
        "cursor": page["cursor"],
    }


def bids_of(items: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    """Each title's highest suggested price as its best buy order, one order deep."""
    bids: dict[str, tuple[int, int]] = {}
    for item in items:
        suggested = str((item.get("suggestedPrice") or {}).get("USD", ""))
        if suggested.isdecimal() and int(suggested) > 0:
            best = bids.get(item["title"], (0, 1))[0]
            bids[item["title"]] = (max(best, int(suggested)), 1)
    return bids


def offers_by_title(items: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    """Each title's lowest listed price in cents and how many listings it has."""
    offers: dict[str, tuple[int, int]] = {}
    for item in items:
        price = str((item.get("price") or {}).get("USD", ""))
        cents = int(price) if price.isdecimal() else 0
        low, count = offers.get(item["title"], (cents, 0))
        offers[item["title"]] = (min(low, cents), count + 1)
    return offers


def offers_query_problem(query: Mapping[str, str]) -> str | None:
    """What the real v2 offers endpoint would reject in this query, or None."""
    if not query.get("gameId"):
        return "gameId: is required"
    limit = query.get("limit", "")
    if not limit.isdecimal() or not 1 <= int(limit) <= MAX_LIMIT:
        return f"limit: must be from 1 to {MAX_LIMIT}, got {limit!r}"
    if len(query.get("cursor", "")) > MAX_CURSOR_CHARS:
        return f"cursor: at most {MAX_CURSOR_CHARS} characters"
    if "orderBy" in query and query["orderBy"] not in ORDER_BY:
        return f"orderBy: must be one of {', '.join(ORDER_BY)}"
    if "orderDir" in query and query["orderDir"] not in ("asc", "desc"):
        return "orderDir: must be asc or desc"
    for name in ("priceFrom", "priceTo"):
        if name in query and not query[name].isdecimal():
            return f"{name}: must be integer cents, got {query[name]!r}"
    return None


def aggregated_prices(
    raw_body: bytes,
    best_bids: Mapping[str, tuple[int, int]],
    offers: Mapping[str, tuple[int, int]],
) -> tuple[int, bytes]:
    """The answer to a POST of aggregated prices: (status, body).

    `best_bids` and `offers`: title -> (best price in cents, count). A title with offers but
    no buy order comes back with orderCount "0"; a title the market never saw is left out.
    """
    try:
        request = json.loads(raw_body or b"null")
        titles = request["filter"]["titles"]
        game = request["filter"]["game"]
    except (ValueError, KeyError, TypeError):
        return 400, error_body_for(AGGREGATED_PRICES_PATH, "body: must be {filter: {game, titles}}")
    if not game or not isinstance(titles, list) or not 1 <= len(titles) <= MAX_TITLES:
        return 400, error_body_for(
            AGGREGATED_PRICES_PATH, f"filter.titles: must hold 1 to {MAX_TITLES} titles"
        )
    prices = []
    for title in titles:
        if not isinstance(title, str) or (title not in best_bids and title not in offers):
            continue
        bid_cents, bid_count = best_bids.get(title, (0, 0))
        offer_cents, offer_count = offers.get(title, (0, 0))
        prices.append(
            {
                "title": title,
                "orderBestPrice": {"Currency": "USD", "Amount": str(bid_cents)},
                "orderCount": str(bid_count),
                "offerBestPrice": {"Currency": "USD", "Amount": str(offer_cents)},
                "offerCount": str(offer_count),
            }
        )
    return 200, json.dumps({"aggregatedPrices": prices, "nextCursor": ""}).encode()


def last_sales(
    query: Mapping[str, str], sales: Mapping[str, Sequence[FakeSale]], now_unix: int
) -> tuple[int, bytes]:
    """The answer to a GET of last sales asked at `now_unix`: newest first, prices as USD
    dollars ("12.34"), dates as Unix seconds in a string."""
    limit = query.get("limit", "")
    if not query.get("gameId") or not query.get("title"):
        return 400, error_body_for(LAST_SALES_PATH, "gameId and title: are required")
    if not limit.isdecimal() or not 1 <= int(limit) <= MAX_SALES_LIMIT:
        return 400, error_body_for(LAST_SALES_PATH, f"limit: must be from 1 to {MAX_SALES_LIMIT}")
    sold = sales.get(query["title"], ())
    dated = [_dated(index, sale, now_unix) for index, sale in enumerate(sold)]
    body = {
        "sales": [
            {
                "price": f"{cents // 100}.{cents % 100:02d}",
                "date": str(unix_seconds),
                "txOperationType": "Offer" if index % 2 == 0 else "Order",
            }
            for index, (cents, unix_seconds) in enumerate(dated[: int(limit)])
        ]
    }
    return 200, json.dumps(body).encode()


def _dated(index: int, sale: FakeSale, now_unix: int) -> tuple[int, int]:
    """(cents, Unix seconds) of the `index`-th sale, newest first."""
    if isinstance(sale, tuple):
        return sale
    return sale, now_unix - UNDATED_SALES_APART_SECONDS * index


def error_body_for(path: str, message: str, code: str = "BadRequest") -> bytes:
    """An error body in the casing the endpoint at `path` uses."""
    if path.startswith(CAPITALISED_ERRORS_PREFIX):
        return json.dumps({"Code": code, "Message": message}).encode()
    return json.dumps({"code": code, "message": message}).encode()
