"""What the loopback DMarket serves: listing objects shaped as DMarket's, scripted replies,
the record of each request, and the checks the real API makes of a query.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

MAX_LIMIT = 100
SECONDS_PER_DAY = 86_400


def dmarket_item(
    item_id: str,
    title: str,
    price_cents: int,
    suggested_cents: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One listing object shaped as DMarket sends it: prices are strings of cents."""
    item: dict[str, Any] = {"itemId": item_id, "title": title, "price": {"USD": str(price_cents)}}
    if suggested_cents is not None:
        item["suggestedPrice"] = {"USD": str(suggested_cents)}
    if extra is not None:
        item["extra"] = dict(extra)
    return item


def locked_item(item: Mapping[str, Any], lock_days: int | None) -> dict[str, Any]:
    """`item` trade-locked, as v1 shows it: `extra.lockStatus` true and, when the lock's
    length is known, `extra.tradeLockDuration` in seconds (None: no duration shown)."""
    locked = copy.deepcopy(dict(item))
    extra = dict(locked.get("extra") or {})
    extra["lockStatus"] = True
    if lock_days is not None:
        extra["tradeLockDuration"] = lock_days * SECONDS_PER_DAY
    locked["extra"] = extra
    return locked


def listed_cents(item: Mapping[str, Any]) -> int | None:
    """A listing object's price in cents; None for the `""` or missing price real answers
    hold (such a listing is served to every price filter)."""
    price = str((item.get("price") or {}).get("USD", ""))
    return int(price) if price.isdecimal() else None


@dataclass(frozen=True)
class Quirk:
    """A quirk of real DMarket answers, from the listing's `at_offset`-th item on.

    `empty_pages`: every page from there is empty but carries a new cursor, for ever.
    `repeating_cursor`: pages from there send back the cursor they were asked with.
    """

    kind: Literal["empty_pages", "repeating_cursor"]
    at_offset: int


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it; `received_at` is time.monotonic() on arrival.

    `connection` is the client's (host, port): one value per TCP connection. `signed` is
    whether the request carried a signature that verified (None: it carried none).
    """

    path: str
    query: dict[str, str]
    received_at: float
    connection: tuple[str, int] = ("", 0)
    status: int = 200
    signed: bool | None = None
    method: str = "GET"
    body: bytes = b""


@dataclass(frozen=True)
class ScriptedReply:
    """An answer given to one chosen request instead of the plain listing page."""

    status: int = 200
    # None: serve the real page for the request (minus `drop_field`).
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # Dotted path removed from the page's first object, e.g. "price.USD".
    drop_field: str | None = None
    delay_seconds: float = 0.0

    @classmethod
    def rate_limited(
        cls, retry_after: str | None = None, rate_limit_reset: str | None = None
    ) -> ScriptedReply:
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        if rate_limit_reset is not None:
            headers["RateLimit-Reset"] = rate_limit_reset
        return cls(status=429, body=error_body("too many requests"), headers=headers)

    @classmethod
    def error(cls, status: int, message: str = "scripted failure") -> ScriptedReply:
        return cls(status=status, body=error_body(message))

    @classmethod
    def malformed_json(cls) -> ScriptedReply:
        return cls(body=b'{"objects": [{"itemId": "cut-off')

    @classmethod
    def json_body(cls, payload: object, status: int = 200) -> ScriptedReply:
        return cls(status=status, body=json.dumps(payload).encode())

    @classmethod
    def missing_field(cls, dotted_path: str) -> ScriptedReply:
        return cls(drop_field=dotted_path)

    @classmethod
    def slow(cls, delay_seconds: float) -> ScriptedReply:
        return cls(delay_seconds=delay_seconds)


@dataclass(frozen=True)
class Answer:
    """A reply the server writes: status, body and extra headers."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def query_problem(query: Mapping[str, str]) -> str | None:
    """What the real API would reject in this query, or None."""
    if not query.get("gameId"):
        return "gameId is required"
    if query.get("currency") != "USD":
        return f"unsupported currency {query.get('currency')!r}"
    limit = query.get("limit", "")
    if not limit.isdecimal() or not 1 <= int(limit) <= MAX_LIMIT:
        return f"limit must be 1..{MAX_LIMIT}, got {limit!r}"
    for name in ("priceFrom", "priceTo"):
        if name in query and not query[name].isdecimal():
            return f"{name} must be integer cents, got {query[name]!r}"
    return None


def drop_field(obj: dict[str, Any], dotted_path: str) -> None:
    *parents, leaf = dotted_path.split(".")
    for name in parents:
        obj = obj[name]
    del obj[leaf]


def error_body(message: str) -> bytes:
    return json.dumps({"code": "error", "message": message}).encode()
