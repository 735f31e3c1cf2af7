"""DMarket's v1 market items body (`GET /exchange/v1/market/items`) read into a `Page`,
with every defect named by its JSON path.

A listing whose own value is past its bound (worker.markets.dmarket.bounds) is walked past
and counted, as one without a price is; a page whose envelope is, is a malformed page.
"""

from __future__ import annotations

import logging
import math
import re
import reprlib
from collections.abc import Callable
from typing import Any, Final

from worker.domain.listing import LOCK_STATUS, TRADE_LOCK_DURATION
from worker.errors import PermanentMarketError
from worker.markets.base import Item, Page
from worker.markets.dmarket import bounds
from worker.markets.dmarket.bounds import OutsizedValue

log = logging.getLogger(__name__)

# ASCII digits only: str.isdigit() would also accept "²", which int() then rejects.
_INTEGER_CENTS = re.compile(r"[0-9]+")
# Item.extra rides into checkpoints and opportunities as JSON; long strings (image URLs,
# descriptions) are not worth their bytes there.
EXTRA_TEXT_MAX_CHARS = 256
_DESCRIBE_MAX_CHARS = 60
# DMarket counts a listing's items up to here and no further: a total this high means
# "at least this many".
TOTAL_CAP = 10_000

MISSING: Final = object()

# A value named in an error is shown this far into its nesting and no further: a repr of
# the whole would walk a structure as deep and as large as the body.
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel = 3
_SHOWN.maxstring = _SHOWN.maxother = _SHOWN.maxlong = _DESCRIBE_MAX_CHARS


def parse_page(payload: object) -> Page:
    """The page in a decoded listing body; PermanentMarketError if it is not one."""
    body = json_object(payload, "response body")
    items, unusable = listings_of(body, "objects", _item)
    total = _total(body)
    return Page(
        items=items,
        next_cursor=next_cursor_of(body),
        total=total,
        total_is_lower_bound=total is not None and total >= TOTAL_CAP,
        unusable=unusable,
    )


def listings_of(
    body: dict[str, Any], key: str, read: Callable[[object, str], Item | None]
) -> tuple[tuple[Item, ...], int]:
    """The listings `read` makes of the list under `key`, and how many it could not use
    (PermanentMarketError if `key` holds no list, or too long a one). A listing with a
    value past its bound is logged and walked past with those: the page goes on."""
    raw_listings = body.get(key, MISSING)
    if not isinstance(raw_listings, list):
        raise malformed(key, "a list", raw_listings)
    bounds.checked_count(len(raw_listings), key)
    items: list[Item] = []
    for index, raw in enumerate(raw_listings):
        path = f"{key}[{index}]"
        try:
            item = read(raw, path)
        except OutsizedValue as exc:
            log.warning("walking past listing %s: %s", path, exc)
            continue
        if item is not None:
            items.append(item)
    return tuple(items), len(raw_listings) - len(items)


def listing_id(value: object, path: str) -> str:
    """A listing's id: a non-empty string (PermanentMarketError), within its bound."""
    if not isinstance(value, str) or not value:
        raise malformed(path, "a non-empty string", value)
    return bounds.checked_text(value, bounds.ITEM_ID_MAX_BYTES, path)


def listing_title(value: object, path: str) -> str:
    """A listing's title: a string (PermanentMarketError), within its bound."""
    if not isinstance(value, str):
        raise malformed(path, "a string", value)
    return bounds.checked_text(value, bounds.TITLE_MAX_BYTES, path)


def _item(raw: object, path: str) -> Item | None:
    """The listing as an Item; None when it has no price (`""` or missing), which real
    DMarket answers do: walked past and counted, not a failed scan."""
    fields = json_object(raw, path)
    item_id = listing_id(fields.get("itemId", MISSING), f"{path}.itemId")
    title = listing_title(fields.get("title", MISSING), f"{path}.title")
    price = fields.get("price", MISSING)
    if is_absent(price):
        return None
    usd = json_object(price, f"{path}.price").get("USD", MISSING)
    if is_absent(usd):
        return None
    return Item(
        item_id=item_id,
        title=title,
        price_cents=_cents(usd, f"{path}.price.USD"),
        reference_price_cents=_reference_cents(
            fields.get("suggestedPrice", MISSING), f"{path}.suggestedPrice"
        ),
        extra=_extra(fields.get("extra", MISSING), f"{path}.extra"),
    )


def _reference_cents(value: object, path: str) -> int | None:
    if value is MISSING or value is None:
        return None
    usd = json_object(value, path).get("USD", MISSING)
    if is_absent(usd):
        return None
    # DMarket sends "0" when it has no suggestion; a zero reference would fake a discount.
    return _cents(usd, f"{path}.USD") or None


def _extra(value: object, path: str) -> dict[str, Any]:
    """The flat descriptors (exterior, category, floatValue, ...) of an item's `extra`.

    Nested lists and objects (stickers, inspect data) are dropped to keep Item.extra
    small; non-finite floats are dropped because JSON (and Postgres JSONB) cannot hold them.
    """
    if value is MISSING or value is None:
        return {}
    fields = json_object(value, path)
    _check_lock(fields, path)
    return {name: field for name, field in fields.items() if is_small_scalar(field)}


def _check_lock(extra: dict[str, object], path: str) -> None:
    """The trade lock fields are what the judging's lock rule reads
    (worker.domain.listing.lock_of): a `lockStatus` that is no boolean, or a
    `tradeLockDuration` that is no count of seconds, is a malformed listing, not an
    unlocked one."""
    status = extra.get(LOCK_STATUS)
    if status is not None and not isinstance(status, bool):
        raise malformed(f"{path}.{LOCK_STATUS}", "a boolean", status)
    seconds = extra.get(TRADE_LOCK_DURATION)
    if seconds is None:
        return
    seconds_path = f"{path}.{TRADE_LOCK_DURATION}"
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or seconds < 0
    ):
        raise malformed(seconds_path, "a non-negative number of seconds", seconds)
    if seconds >= 10**bounds.PRICE_MAX_DIGITS:
        raise outsized_number(seconds_path)


def is_absent(value: object) -> bool:
    """DMarket's ways of leaving a value out: no key, null, or `""` for an unused price."""
    return value is MISSING or value is None or value == ""


def is_small_scalar(value: object) -> bool:
    if value is None or isinstance(value, bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str) and len(value) <= EXTRA_TEXT_MAX_CHARS


def next_cursor_of(body: dict[str, object]) -> str | None:
    cursor = body.get("cursor", MISSING)
    # An empty or absent cursor is how DMarket says "that was the last page".
    if cursor is MISSING or cursor is None or cursor == "":
        return None
    if not isinstance(cursor, str):
        raise malformed("cursor", "a string", cursor)
    return bounds.checked_text(cursor, bounds.CURSOR_MAX_BYTES, "cursor")


def _total(body: dict[str, object]) -> int | None:
    total = body.get("total", MISSING)
    if total is MISSING or total is None:
        return None
    if isinstance(total, dict):
        return count_at(total.get("items", MISSING), "total.items")
    return count_at(total, "total")


def count_at(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise malformed(path, "a non-negative integer", value)
    return value


def _cents(value: object, path: str) -> int:
    if not isinstance(value, str) or not _INTEGER_CENTS.fullmatch(value):
        raise malformed(path, "a string of integer cents", value)
    return listing_cents(value, path)


def listing_cents(value: str | int, path: str) -> int:
    """A listing's price in cents (its shape already checked); OutsizedValue past the bound."""
    if not bounds.fits_digits(value):
        raise outsized_number(path)
    return int(value)


def outsized_number(path: str) -> OutsizedValue:
    return OutsizedValue(f"{path}: a number of more than {bounds.PRICE_MAX_DIGITS} digits")


def json_object(value: object, path: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise malformed(path, "an object", value)
    return value


def malformed(path: str, expected: str, value: object) -> PermanentMarketError:
    return PermanentMarketError(f"{path}: expected {expected}, got {describe(value)}")


def describe(value: object) -> str:
    """`value` as an error shows it: a short repr, however large or deep the value."""
    if value is MISSING:
        return "missing"
    text = _SHOWN.repr(value)
    if len(text) > _DESCRIBE_MAX_CHARS:
        return text[: _DESCRIBE_MAX_CHARS - 3] + "..."
    return text
