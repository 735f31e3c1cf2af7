"""Skinport's two answers read into a price list's parts: `/v1/items` into each title's lowest
listing in cents, `/v1/sales/history` into each title's sales in the last 7 days.

Both follow Skinport's documented shape (https://docs.skinport.com) or are refused whole,
naming the JSON path that is not (`skinport items: [3].market_hash_name: expected a string,
got 7`): a list read half would judge listings against a market that seems to sell less than
it does. One item's price that is not a finite number >= 0 only leaves that item out,
counted. Prices are decimal numbers in the asked currency, read as Decimal, never a float,
so 0.3 is 30 cents and 1234.565 is 123457.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from worker.errors import RetryableMarketError
from worker.markets.dmarket import bounds

ITEMS: Final = "skinport items"
SALES_HISTORY: Final = "skinport sales history"
# The one window of the sales history read: the appraisal asks for 7 days of volume.
WEEK_WINDOW: Final = "last_7_days"
# Digits past which a JSON integer is kept as a Decimal, not converted (Python converts
# 5,000 digits slowly, or refuses); no volume or price has a tenth of them.
INTEGER_MAX_DIGITS: Final = 100
# A price of 10**18 dollars is 10**20 cents: past any item, and past what a cent column
# holds (worker.markets.dmarket.bounds).
PRICE_LIMIT: Final = Decimal(10**bounds.PRICE_MAX_DIGITS) / 100
COUNT_LIMIT: Final = 10**bounds.PRICE_MAX_DIGITS
CENT: Final = Decimal("0.01")
# Enough of a value to recognise it in a log line.
VALUE_EXCERPT_CHARS: Final = 80


def decoded(data: bytes, what: str) -> object:
    """The JSON in `data`, its numbers with a fraction or exponent as Decimal."""
    try:
        return json.loads(data, parse_float=Decimal, parse_int=_integer)
    except RecursionError:
        raise RetryableMarketError(f"{what}: not valid JSON (nested too deep)") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise RetryableMarketError(f"{what}: not valid JSON ({_excerpt(exc)})") from exc


def min_prices(document: object, currency: str) -> tuple[dict[str, int | None], int]:
    """Each title's lowest listing in cents (None: nothing listed) from `/v1/items`, and how
    many items were left out for a price, or a title past its bound.

    A title listed twice keeps its lowest price (any price is lower than none).
    """
    prices: dict[str, int | None] = {}
    skipped = 0
    for index, entry in _entries(document, ITEMS):
        title = _title(entry, ITEMS, index, currency)
        value = entry.get("min_price")
        cents = None if value is None else cents_of(value)
        if (value is not None and cents is None) or not _title_within_bound(title):
            skipped += 1
            continue
        if title not in prices or _lower(cents, prices[title]):
            prices[title] = cents
    return prices, skipped


def weekly_volumes(document: object, currency: str) -> dict[str, int]:
    """Each title's sales in the last 7 days from `/v1/sales/history` (a title twice: the
    larger). Only the window read is checked: the others may change shape unnoticed."""
    volumes: dict[str, int] = {}
    for index, entry in _entries(document, SALES_HISTORY):
        title = _title(entry, SALES_HISTORY, index, currency)
        window = entry.get(WEEK_WINDOW)
        path = f"[{index}].{WEEK_WINDOW}"
        if not isinstance(window, dict):
            raise _malformed(SALES_HISTORY, path, "an object", window)
        volume = window.get("volume")
        if isinstance(volume, bool) or not isinstance(volume, int) or not 0 <= volume < COUNT_LIMIT:
            raise _malformed(SALES_HISTORY, f"{path}.volume", "a non-negative integer", volume)
        volumes[title] = max(volume, volumes.get(title, 0))
    return volumes


def cents_of(value: object) -> int | None:
    """A price in whole cents, rounded half up; None if it is not a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        # A float is only ever json's Infinity or NaN here: every other number is Decimal.
        return None
    amount = Decimal(value)
    if not amount.is_finite() or not 0 <= amount < PRICE_LIMIT:
        return None
    # quantize rounds the exact value once; the cents then have at most 20 digits, well
    # within Decimal's 28, so the product is exact.
    return int(amount.quantize(CENT, rounding=ROUND_HALF_UP) * 100)


def error_text(data: bytes) -> str:
    """What Skinport said went wrong (`{"errors": [{"id", "message"}]}`), else an excerpt."""
    try:
        document = decoded(data, "error")
    except RetryableMarketError:
        document = None
    errors = document.get("errors") if isinstance(document, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0]
        parts = [str(first[key]) for key in ("id", "message") if isinstance(first.get(key), str)]
        if parts:
            return _excerpt(": ".join(parts))
    return _excerpt(data[: 4 * VALUE_EXCERPT_CHARS].decode("utf-8", errors="replace")) or (
        "<empty body>"
    )


def _entries(document: object, what: str) -> list[tuple[int, dict[str, object]]]:
    if not isinstance(document, list):
        raise _malformed(what, "the answer", "a list", document)
    entries = []
    for index, entry in enumerate(document):
        if not isinstance(entry, dict):
            raise _malformed(what, f"[{index}]", "an object", entry)
        entries.append((index, entry))
    return entries


def _title(entry: dict[str, object], what: str, index: int, currency: str) -> str:
    title = entry.get("market_hash_name")
    if not isinstance(title, str):
        raise _malformed(what, f"[{index}].market_hash_name", "a string", title)
    if entry.get("currency") != currency:
        raise _malformed(what, f"[{index}].currency", repr(currency), entry.get("currency"))
    return title


def _title_within_bound(title: str) -> bool:
    try:
        bounds.checked_text(title, bounds.TITLE_MAX_BYTES, "market_hash_name")
    except bounds.OutsizedValue:
        return False
    return True


def _lower(cents: int | None, kept: int | None) -> bool:
    return cents is not None and (kept is None or cents < kept)


def _integer(digits: str) -> int | Decimal:
    return int(digits) if len(digits) <= INTEGER_MAX_DIGITS else Decimal(digits)


def _malformed(what: str, path: str, expected: str, value: object) -> RetryableMarketError:
    # A number as JSON wrote it (1.5, not Decimal('1.5')); anything else as Python shows it,
    # so the string "7" is told from the number 7.
    shown = str(value) if isinstance(value, Decimal) else repr(value)
    return RetryableMarketError(f"{what}: {path}: expected {expected}, got {_excerpt(shown)}")


def _excerpt(value: object) -> str:
    text = " ".join(str(value).split())
    return text[:VALUE_EXCERPT_CHARS] + "..." if len(text) > VALUE_EXCERPT_CHARS else text
