"""DMarket's published fees: the default and the daily reduced fees of one game
(`GET /exchange/v1/customized-fees`), fetched page by page through the fleet's cache.

How an answer is read, as the spec does not say every unit: `fraction` is a decimal string
of a fraction of the price, 0 to 1 ("0.05" is 5 %, 500 basis points; a finer fraction is
rounded UP to the next basis point, so a fee is never understated); `minAmount`, `minPrice`
and `maxPrice` are integer USD cents in strings ("100" is $1.00; a JSON integer is read
alike), as the v2 listing's prices are; `expiresAt` is Unix seconds, an integer or a
string of one. The loopback
DMarket serves that reading (worker.testing.dmarket_fees), and tests/contract/
test_fee_source.py checks a known table comes back whole.

Anything else (a fraction past 1, a negative or fractional amount, a missing field, a band
whose low end is above its high end) is a RetryableMarketError naming the JSON path: a
table with one wrong fee would misjudge every listing of its titles, and a fetch asked
again may well be answered properly. Nothing of a failed fetch is kept.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Final

from worker.domain.fees import BPS_WHOLE, FeeTable, ReducedFee
from worker.errors import RetryableMarketError
from worker.markets.dmarket import bounds
from worker.markets.dmarket.transport import FEES, DMarketTransport
from worker.markets.dmarket.v1_items import MISSING, describe
from worker.markets.fees.cache import FeeCache

PATH: Final = "/exchange/v1/customized-fees"
# The fees of listings sold on DMarket itself (the API also knows peer-to-peer offers).
OFFER_TYPE: Final = "dmarket"
# Reduced fees asked for per request; a page holding fewer is the last.
PAGE_LIMIT: Final = 100
# Pages read at most: 10,000 reduced titles, far past DMarket's daily list. A list longer
# than that (or a server that ignores the offset) is refused rather than walked for ever.
MAX_PAGES: Final = 100
# A fraction: a plain decimal, no sign, no exponent, short enough to cost nothing to read.
_FRACTION: Final = re.compile(r"[0-9]{1,4}(?:\.[0-9]{1,30})?")


@dataclass(frozen=True)
class FeePage:
    """One page of the answer: the default fee (basis points, floor in cents) and the
    reduced fees it lists."""

    default_bps: int
    min_amount_cents: int
    reduced: tuple[ReducedFee, ...]


class DMarketFees:
    """The fees of one game's DMarket sales, read through the fleet's cache."""

    def __init__(
        self,
        transport: DMarketTransport,
        game_id: str,
        cache: FeeCache,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._transport = transport
        self._game_id = game_id
        self._cache = cache
        self._clock = clock

    def table(self) -> FeeTable:
        return self._cache.table(self._fetch)

    def _fetch(self) -> FeeTable:
        """Every page, until one holds fewer than PAGE_LIMIT reduced fees."""
        first: FeePage | None = None
        reduced: list[ReducedFee] = []
        for number in range(MAX_PAGES):
            offset = number * PAGE_LIMIT
            page = parse_fee_page(self._page(offset), offset)
            if first is None:
                first = page
            elif (page.default_bps, page.min_amount_cents) != (
                first.default_bps,
                first.min_amount_cents,
            ):
                # The list changed while it was read: its pages may skip or repeat titles.
                raise RetryableMarketError(
                    f"customized fees (offset {offset}): defaultFee changed between pages"
                )
            reduced.extend(page.reduced)
            if len(page.reduced) < PAGE_LIMIT:
                # Stamped once read whole: expires_at() counts expiries after this moment.
                return FeeTable(
                    first.default_bps, first.min_amount_cents, tuple(reduced), self._clock()
                )
        raise RetryableMarketError(
            f"customized fees: more than {MAX_PAGES * PAGE_LIMIT} reduced fees "
            f"({MAX_PAGES} full pages)"
        )

    def _page(self, offset: int) -> object:
        params = {
            "gameId": self._game_id,
            "offerType": OFFER_TYPE,
            "limit": str(PAGE_LIMIT),
            "offset": str(offset),
        }
        return self._transport.send(FEES, "GET", PATH, params, unreadable=RetryableMarketError)


def parse_fee_page(payload: object, offset: int = 0) -> FeePage:
    """One decoded answer as a FeePage; RetryableMarketError naming a defect's JSON path."""
    where = f"customized fees (offset {offset})"
    if not isinstance(payload, dict):
        raise _malformed(where, "response body", "an object", payload)
    default = payload.get("defaultFee", MISSING)
    if not isinstance(default, dict):
        raise _malformed(where, "defaultFee", "an object", default)
    default_bps = _bps(default.get("fraction", MISSING), where, "defaultFee.fraction")
    min_amount = _cents(default.get("minAmount", MISSING), where, "defaultFee.minAmount")
    entries = payload.get("reducedFees", MISSING)
    if not isinstance(entries, list):
        raise _malformed(where, "reducedFees", "a list", entries)
    if len(entries) > PAGE_LIMIT:
        raise RetryableMarketError(
            f"{where}: reducedFees: {len(entries)} entries, over the {PAGE_LIMIT} asked for"
        )
    reduced = tuple(_reduced(entry, where, f"reducedFees[{n}]") for n, entry in enumerate(entries))
    return FeePage(default_bps, min_amount, reduced)


def _reduced(entry: object, where: str, path: str) -> ReducedFee:
    if not isinstance(entry, dict):
        raise _malformed(where, path, "an object", entry)
    title = entry.get("title", MISSING)
    if not isinstance(title, str) or not title.strip():
        raise _malformed(where, f"{path}.title", "a title", title)
    if len(title.encode("utf-8", errors="replace")) > bounds.TITLE_MAX_BYTES:
        raise _malformed(where, f"{path}.title", f"at most {bounds.TITLE_MAX_BYTES} bytes", title)
    bps = _bps(entry.get("fraction", MISSING), where, f"{path}.fraction")
    low = _cents(entry.get("minPrice", MISSING), where, f"{path}.minPrice")
    high = _cents(entry.get("maxPrice", MISSING), where, f"{path}.maxPrice")
    if low > high:
        raise RetryableMarketError(
            f"{where}: {path}: minPrice {low} is above maxPrice {high}: no price is in its band"
        )
    expires_at = _unix_seconds(entry.get("expiresAt", MISSING), where, f"{path}.expiresAt")
    return ReducedFee(title, bps, low, high, float(expires_at))


def _bps(value: object, where: str, path: str) -> int:
    """A fraction from 0 to 1 in basis points, rounded up."""
    expected = 'a string of a fraction from 0 to 1 such as "0.05"'
    text = value.strip() if isinstance(value, str) else None
    if text is None or not _FRACTION.fullmatch(text):
        raise _malformed(where, path, expected, value)
    fraction = Decimal(text)
    if fraction > 1:
        raise _malformed(where, path, expected, value)
    return int((fraction * BPS_WHOLE).to_integral_value(rounding=ROUND_CEILING))


def _cents(value: object, where: str, path: str) -> int:
    return _integer(value, where, path, 'a string of non-negative integer cents such as "100"')


def _unix_seconds(value: object, where: str, path: str) -> int:
    return _integer(value, where, path, "Unix seconds, an integer or a string of one")


def _integer(value: object, where: str, path: str, expected: str) -> int:
    """A non-negative integer, as a JSON integer or a string of digits, of at most
    PRICE_MAX_DIGITS digits (worker.markets.dmarket.bounds.integer_of)."""
    integer = bounds.integer_of(value)
    if integer is None:
        raise _malformed(where, path, expected, value)
    return integer


def _malformed(where: str, path: str, expected: str, value: object) -> RetryableMarketError:
    return RetryableMarketError(f"{where}: {path}: expected {expected}, got {describe(value)}")
