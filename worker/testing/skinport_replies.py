"""What the loopback Skinport serves: its items and sales history shaped as Skinport's public
API documents them (https://docs.skinport.com), the checks it makes of a query, the record
of each request, and the broken answers a test can ask for.

Prices are decimal numbers in the asked currency (12.34), times Unix seconds. Bodies are
Brotli, as Skinport sends every answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, quote_plus

import brotli

ITEMS_PATH = "/v1/items"
SALES_HISTORY_PATH = "/v1/sales/history"

# Skinport's games: CS2, Dota 2, TF2, Rust.
APP_IDS = frozenset({"730", "570", "440", "252490"})
# A few of the currencies Skinport prices in, at fixed rates from the USD the items hold.
USD_RATES: Mapping[str, float] = {
    "USD": 1.0,
    "EUR": 0.92,
    "GBP": 0.79,
    "PLN": 3.98,
    "CAD": 1.36,
    "CHF": 0.88,
}
# What Skinport assumes when a query leaves them out.
DEFAULT_APP_ID = "730"
DEFAULT_CURRENCY = "EUR"
TRADABLE_VALUES = frozenset({"0", "1", "false", "true"})

# A fixed listing date, so two answers of one item agree.
CREATED_AT = 1_535_988_253

# How the fake can be told to fail a request: an HTTP status (with an error body), or
# "not_json" (Brotli of bytes that are not JSON), "wrong_shape" (a JSON object where a list
# belongs), "bad_brotli" (Content-Encoding br over bytes that are not Brotli), "hang"
# (answer only after the hang's seconds, longer than a client waits).
Failure = int | Literal["not_json", "wrong_shape", "bad_brotli", "hang"]

JSON_HEADERS: Mapping[str, str] = {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Encoding": "br",
}


@dataclass(frozen=True)
class FakeSkinportItem:
    """One item on the loopback Skinport, priced in USD.

    `min_price`: the lowest listing (None: nothing listed); any other JSON value is served
    as it is, to test a client against bad ones. When it is a number, max, mean and median
    follow from it. `volume_7d`: sales in the last 7 days; None leaves the item out of the
    sales history. `sale_price`: the price the sales went at (default: `min_price`).
    `suggested_price`: default 110 % of `min_price`. `updated_at`: Unix seconds (default:
    the moment of the answer).
    """

    market_hash_name: str
    min_price: object
    volume_7d: int | None = 0
    quantity: int = 1
    sale_price: object = None
    suggested_price: object = None
    created_at: int = CREATED_AT
    updated_at: int | None = None


@dataclass(frozen=True)
class SkinportRequest:
    """One request as the fake saw it: `headers` keyed in lower case, `received_at` is
    time.monotonic() on arrival, `status` what it was answered."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    received_at: float
    status: int


@dataclass(frozen=True)
class Reply:
    """An answer ready to send: the body's bytes as they go on the wire."""

    status: int
    body: bytes
    headers: Mapping[str, str]


def json_reply(status: int, document: object, **headers: str) -> Reply:
    """`document` as JSON in Brotli, as Skinport sends every answer."""
    body = brotli.compress(json.dumps(document).encode())
    return Reply(status, body, {**JSON_HEADERS, **headers})


def error_reply(status: int, error_id: str, message: str, **headers: str) -> Reply:
    """Skinport's error document: `{"errors": [{"id": ..., "message": ...}]}`."""
    return json_reply(status, {"errors": [{"id": error_id, "message": message}]}, **headers)


def failure_reply(failure: Failure) -> Reply:
    """The broken answer `failure` names ("hang" is served whole, only late)."""
    if isinstance(failure, int):
        return error_reply(failure, "internal_error", f"told to answer {failure}")
    if failure == "not_json":
        return Reply(200, brotli.compress(b"<html>Bad Gateway</html>"), JSON_HEADERS)
    if failure == "wrong_shape":
        return json_reply(200, {"items": []})
    if failure == "bad_brotli":
        return Reply(200, b"this is not brotli \x00\xff\x00\xff", JSON_HEADERS)
    raise ValueError(f"no broken answer for {failure!r}")


def accepts_brotli(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header offers `br` (with a q above zero)."""
    for offer in accept_encoding.split(","):
        coding, _, parameters = offer.strip().partition(";")
        if coding.strip().lower() != "br":
            continue
        quality = parameters.strip().removeprefix("q=").strip()
        try:
            return not quality or float(quality) > 0
        except ValueError:
            return False
    return False


def query_problem(query: Mapping[str, str]) -> Reply | None:
    """The 400 Skinport gives a query it refuses, or None."""
    app_id = query.get("app_id", DEFAULT_APP_ID)
    if app_id not in APP_IDS:
        return error_reply(400, "invalid_app_id", f"app_id {app_id!r} is not supported")
    currency = query.get("currency", DEFAULT_CURRENCY)
    if currency not in USD_RATES:
        return error_reply(400, "invalid_currency", f"currency {currency!r} is not supported")
    if query.get("tradable", "0") not in TRADABLE_VALUES:
        return error_reply(400, "invalid_tradable", "tradable must be 0 or 1")
    return None


def _usd(value: object) -> float | None:
    """`value` as a price, or None when it is not a number (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _priced(usd: object, rate: float, factor: float = 1.0) -> object:
    """A USD price in the asked currency, to the cent; a non-number is served as it is."""
    price = _usd(usd)
    return usd if price is None else round(price * factor * rate, 2)


def _derived(usd: object, rate: float, factor: float) -> object:
    """A price that follows from the minimum; null when the minimum is not a number."""
    return None if _usd(usd) is None else _priced(usd, rate, factor)


def _pages(name: str, app_id: str) -> dict[str, str]:
    slug = quote(name.lower().replace(" | ", "-").replace(" ", "-"), safe="-")
    return {
        "item_page": f"https://skinport.com/item/{slug}",
        "market_page": f"https://skinport.com/market/{app_id}?search={quote_plus(name)}",
    }


def items_answer(
    items: Sequence[FakeSkinportItem], query: Mapping[str, str], now: int
) -> list[dict[str, object]]:
    """`GET /v1/items`: every item, priced in the asked currency."""
    currency = query.get("currency", DEFAULT_CURRENCY)
    app_id = query.get("app_id", DEFAULT_APP_ID)
    rate = USD_RATES[currency]
    return [
        {
            "market_hash_name": item.market_hash_name,
            "currency": currency,
            "suggested_price": _priced(item.suggested_price, rate)
            if item.suggested_price is not None
            else _derived(item.min_price, rate, 1.10),
            **_pages(item.market_hash_name, app_id),
            "min_price": _priced(item.min_price, rate),
            "max_price": _derived(item.min_price, rate, 1.25),
            "mean_price": _derived(item.min_price, rate, 1.10),
            "median_price": _derived(item.min_price, rate, 1.05),
            "quantity": item.quantity,
            "created_at": item.created_at,
            "updated_at": item.updated_at if item.updated_at is not None else now,
        }
        for item in items
    ]


def _window(price: object, volume: int, rate: float) -> dict[str, object]:
    """One window of sales; a window without sales has null prices, as Skinport's."""
    if volume == 0:
        return {"min": None, "max": None, "avg": None, "median": None, "volume": 0}
    return {
        "min": _derived(price, rate, 0.95),
        "max": _derived(price, rate, 1.10),
        "avg": _derived(price, rate, 1.02),
        "median": _priced(price, rate),
        "volume": volume,
    }


def sales_history_answer(
    items: Sequence[FakeSkinportItem], query: Mapping[str, str]
) -> list[dict[str, object]]:
    """`GET /v1/sales/history`: the items with a 7-day volume (those named in
    `market_hash_name`, comma-separated, when it is given), with their sales by window."""
    currency = query.get("currency", DEFAULT_CURRENCY)
    app_id = query.get("app_id", DEFAULT_APP_ID)
    rate = USD_RATES[currency]
    named = query.get("market_hash_name")
    wanted = None if named is None else set(named.split(","))
    history: list[dict[str, object]] = []
    for item in items:
        week = item.volume_7d
        if week is None or (wanted is not None and item.market_hash_name not in wanted):
            continue
        price = item.sale_price if item.sale_price is not None else item.min_price
        volumes = {"last_24_hours": week // 7, "last_7_days": week}
        volumes |= {"last_30_days": week * 4, "last_90_days": week * 12}
        history.append(
            {
                "market_hash_name": item.market_hash_name,
                "currency": currency,
                **_pages(item.market_hash_name, app_id),
                **{name: _window(price, volume, rate) for name, volume in volumes.items()},
            }
        )
    return history
