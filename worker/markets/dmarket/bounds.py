"""How large a value in a DMarket answer may be, and the error for one past its bound.

An answer is read by the worker that scans: a broken or hostile one must cost no more than
an ordinary page, and must never reach a column, a Redis key or a query it cannot enter.
Each bound is far past anything DMarket sends. A listing's own value past its bound walks
past that listing (worker.markets.dmarket.v1_items); a page's envelope past its bound is a
malformed page; a reference lookup's answer past its bound is a malformed lookup.
"""

from __future__ import annotations

import re
from typing import Final

from worker.domain.listing import MAX_PAGE_SIZE
from worker.errors import PermanentMarketError

# UTF-8 bytes of the cursor a page hands on (DMarket's are about a hundred). It is stored
# as the scan's cursor; up to 64 KiB is what the seed API's checkpoints accept too, so a
# DMarket cursor is never one our own state cannot hold.
CURSOR_MAX_BYTES: Final = 64 * 1024
# UTF-8 bytes of a listing's id (a UUID is 36, a peer-to-peer id about 35). The id keys
# scan_opportunities' primary-key index and the page's judged ids.
ITEM_ID_MAX_BYTES: Final = 256
# UTF-8 bytes of a listing's title (the longest CS2 market names are about 100). A title
# is stored with a find and keys the fleet's reference cache and last-sales queries.
TITLE_MAX_BYTES: Final = 512
# Digits of an integer amount in cents, or of a count: 10**20 cents is a billion billion
# dollars. Past it no conversion or arithmetic is tried (Python converts 5,000 digits
# slowly, or not at all); below it, beyond 32 bits, the judging skips the listing.
PRICE_MAX_DIGITS: Final = 20
# Entries in one list of an answer (listings, aggregated prices): ten times what a request
# can ask for (100), so a page's work and its judged ids stay a page's.
LISTINGS_MAX: Final = 10 * MAX_PAGE_SIZE

_INTEGER_LIMIT: Final = 10**PRICE_MAX_DIGITS
_DIGITS: Final = re.compile(r"[0-9]+")


class OutsizedValue(PermanentMarketError):
    """A DMarket value of the documented shape but past any real one's size."""

    @classmethod
    def at(cls, path: str, size: str, bound: str) -> OutsizedValue:
        return cls(f"{path}: {size}, over {bound}")


def checked_text(value: str, max_bytes: int, path: str) -> str:
    """`value` if it is UTF-8 of at most `max_bytes` bytes; OutsizedValue otherwise.

    A lone surrogate (JSON's "\\ud800") has no UTF-8: no column, key or URL takes it.
    """
    if value.isascii():
        size = len(value)
    elif len(value) > max_bytes:
        # Characters never outnumber bytes: refused without encoding the whole string.
        raise OutsizedValue.at(path, f"{len(value)} characters", f"{max_bytes} bytes")
    else:
        try:
            size = len(value.encode())
        except UnicodeEncodeError:
            raise OutsizedValue(f"{path}: not encodable as UTF-8 (a lone surrogate)") from None
    if size > max_bytes:
        raise OutsizedValue.at(path, f"{size} bytes", f"{max_bytes}")
    return value


def fits_digits(value: str | int) -> bool:
    """Whether an integer DMarket sent, as a JSON integer or a string of ASCII digits, has
    at most PRICE_MAX_DIGITS digits: only then is it converted or computed with."""
    if isinstance(value, int):
        return -_INTEGER_LIMIT < value < _INTEGER_LIMIT
    return len(value) <= PRICE_MAX_DIGITS


def integer_of(value: object) -> int | None:
    """A non-negative integer DMarket sent as a JSON integer or a string of ASCII digits,
    of at most PRICE_MAX_DIGITS digits (past that it is no real one, and is not
    converted); None for anything else."""
    if isinstance(value, str) and _DIGITS.fullmatch(value) and fits_digits(value):
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value if fits_digits(value) else None
    return None


def checked_count(length: int, path: str) -> None:
    """OutsizedValue when a list of an answer holds more than LISTINGS_MAX entries."""
    if length > LISTINGS_MAX:
        raise OutsizedValue.at(path, f"{length} listings", f"{LISTINGS_MAX}")
