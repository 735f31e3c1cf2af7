"""A market's response body, read only as far as a page may be: streamed, inflated within
BODY_MAX_BYTES and stopped past it, then decoded as JSON that cannot take the worker down.

An answer is read in the process that scans. Read whole, a body of gigabytes (or a gzip
that inflates to them) would take its memory; decoded plainly, arrays nested 100,000 deep
raise RecursionError and a number of 5,000 digits ValueError, neither a market error, so
the page would be handed back again and again. Here each is a defect the transport names.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Final

import httpx

# Bytes of a body once inflated. DMarket's largest answer, a page of 100 v1 listings with
# every descriptor, is about 0.4 MB; decoding 2 MiB of the worst JSON takes about 0.1 s.
BODY_MAX_BYTES: Final = 2 * 1024 * 1024
# The encodings a body may come in: the ones inflated here within the bound. Asked for
# explicitly, so httpx never offers one it would inflate without a bound (br, zstd).
ACCEPT_ENCODING: Final = "gzip, deflate"
# Each Content-Encoding read, and whether it is inflated.
ENCODINGS: Final = {"": False, "identity": False, "gzip": True, "x-gzip": True, "deflate": True}
# Bytes of the body as sent handed on at a time.
READ_CHUNK_BYTES: Final = 64 * 1024


@dataclass(frozen=True)
class Body:
    """A response body as far as it was read; `cut_short` says why it is not whole (None:
    it is), and `data` is then at most its first BODY_MAX_BYTES bytes."""

    data: bytes
    cut_short: str | None = None


class OutsizedNumber:
    """A JSON integer longer than Python converts (4,300 digits): kept as its length only.

    Not an int, so every parser refuses it where it wants a number, naming its size.
    """

    __slots__ = ("digits",)

    def __init__(self, digits: int) -> None:
        self.digits = digits

    def __repr__(self) -> str:
        return f"<a number of {self.digits} digits>"


def read(response: httpx.Response, max_bytes: int = BODY_MAX_BYTES) -> Body:
    """The body of a streamed `response`, inflated, read no further than `max_bytes`."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ENCODINGS:
        return Body(b"", f"Content-Encoding {encoding!r} was not asked for")
    # zlib reads a gzip or a zlib stream (RFC 9110's deflate) alike with this window.
    stream = zlib.decompressobj(zlib.MAX_WBITS | 32) if ENCODINGS[encoding] else None
    chunks: list[bytes] = []
    size = 0
    for raw in response.iter_raw(READ_CHUNK_BYTES):
        # One byte past the room left is enough to know the body is too large. With
        # max_length, zlib stops there: a chunk that would inflate a thousandfold yields
        # only the room left.
        room = max_bytes - size + 1
        try:
            chunk = raw if stream is None else stream.decompress(raw, room)
        except zlib.error as exc:
            return Body(b"".join(chunks), f"not valid {encoding} ({exc})")
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            return Body(b"".join(chunks)[:max_bytes], f"over {max_bytes} bytes")
    if stream is not None and not stream.eof:
        return Body(b"".join(chunks), f"not valid {encoding} (cut off)")
    return Body(b"".join(chunks))


def json_of(data: bytes) -> object:
    """The JSON value in `data`; ValueError (what json raises) for anything unreadable.

    Nesting past what Python's decoder walks is unreadable too. A number past 4,300 digits
    does not fail the body: it becomes an OutsizedNumber, so only the listing holding it is
    walked past.
    """
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise
    except RecursionError:
        raise ValueError("nested deeper than Python's JSON decoder reads") from None
    except ValueError:
        # Only int() raises anything else: a number past Python's 4,300 digits. Decoded
        # again with such numbers left unconverted (slower, so only for such a body).
        pass
    try:
        return json.loads(data, parse_int=_integer_or_outsized)
    except RecursionError:
        raise ValueError("nested deeper than Python's JSON decoder reads") from None


def _integer_or_outsized(digits: str) -> int | OutsizedNumber:
    try:
        return int(digits)
    except ValueError:
        return OutsizedNumber(len(digits.lstrip("-")))
