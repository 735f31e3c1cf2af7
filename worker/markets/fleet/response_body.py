"""A market's response body, read only as far as a page may be: streamed, inflated within
BODY_MAX_BYTES and stopped past it, then decoded as JSON that cannot take the worker down.

An answer is read in the process that scans. Read whole, a body of gigabytes (or a gzip
that inflates to them) would take its memory; decoded plainly, arrays nested 100,000 deep
raise RecursionError and a number of 5,000 digits ValueError, neither a market error, so
the page would be handed back again and again. Here each is a defect the transport names.

Skinport answers only in Brotli (worker.markets.second_market.skinport), so `br` is inflated
within the bound too, but only for a caller that asked for it: DMarket asks for gzip and
deflate, and a `br` answer to it stays one not asked for.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import brotli
import httpx

# Bytes of a body once inflated. DMarket's largest answer, a page of 100 v1 listings with
# every descriptor, is about 0.4 MB; decoding 2 MiB of the worst JSON takes about 0.1 s.
BODY_MAX_BYTES: Final = 2 * 1024 * 1024
# The encodings a body may come in: the ones inflated here within the bound. Asked for
# explicitly, so httpx never offers one it would inflate without a bound (br, zstd).
ACCEPT_ENCODING: Final = "gzip, deflate"
# Each Content-Encoding read, and the Accept-Encoding coding it answers (None: sent as is,
# always accepted).
ENCODINGS: Final = {
    "": None,
    "identity": None,
    "gzip": "gzip",
    "x-gzip": "gzip",
    "deflate": "deflate",
    "br": "br",
}
# Bytes of the body as sent handed on at a time.
READ_CHUNK_BYTES: Final = 64 * 1024
# Bytes Brotli is asked to inflate per step. Its output buffer grows in blocks and stops
# only once past the limit asked, up to about twice it: small steps keep that overshoot
# small whatever the bound (one step of 64 MiB + 1 measured at 83.8 MB).
BROTLI_STEP_BYTES: Final = 64 * 1024


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


def read(
    response: httpx.Response,
    max_bytes: int = BODY_MAX_BYTES,
    accept_encoding: str = ACCEPT_ENCODING,
) -> Body:
    """The body of a streamed `response`, inflated, read no further than `max_bytes`.

    `accept_encoding`: the Accept-Encoding the request sent; a body in another coding is
    refused unread.
    """
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    accepted = {coding.split(";")[0].strip().lower() for coding in accept_encoding.split(",")}
    if encoding not in ENCODINGS or ENCODINGS[encoding] not in (None, *accepted):
        return Body(b"", f"Content-Encoding {encoding!r} was not asked for")
    stream = _inflater(ENCODINGS[encoding])
    chunks: list[bytes] = []
    size = 0
    for raw in response.iter_raw(READ_CHUNK_BYTES):
        # One byte past the room left is enough to know the body is too large: each
        # inflater stops there, so a chunk that would inflate a thousandfold yields only
        # the room left.
        room = max_bytes - size + 1
        try:
            pieces = [raw] if stream is None else stream.inflate(raw, room)
        except (zlib.error, brotli.error) as exc:
            return Body(b"".join(chunks), f"not valid {encoding} ({exc})")
        for piece in pieces:
            size += len(piece)
            if size > max_bytes:
                # Cut before joining: the join is then the only copy of the bound's bytes.
                chunks.append(piece[: len(piece) - (size - max_bytes)])
                return Body(b"".join(chunks), f"over {max_bytes} bytes")
            chunks.append(piece)
    if stream is not None and not stream.finished():
        return Body(b"".join(chunks), f"not valid {encoding} (cut off)")
    return Body(b"".join(chunks))


@dataclass(frozen=True)
class _Inflater:
    """One compressed stream: `inflate(raw, room)` gives what `raw` inflates to, in pieces,
    stopping once it has at least `room` bytes; `finished()` says whether the stream ended."""

    inflate: Callable[[bytes, int], list[bytes]]
    finished: Callable[[], bool]


def _inflater(coding: str | None) -> _Inflater | None:
    if coding is None:
        return None
    if coding == "br":
        return _brotli_inflater()
    # zlib reads a gzip or a zlib stream (RFC 9110's deflate) alike with this window.
    stream = zlib.decompressobj(zlib.MAX_WBITS | 32)
    return _Inflater(lambda raw, room: [stream.decompress(raw, room)], lambda: stream.eof)


def _brotli_inflater() -> _Inflater:
    decompressor = brotli.Decompressor()

    def inflate(raw: bytes, room: int) -> list[bytes]:
        # Past its output limit the decoder keeps the rest (input taken, output owed) and
        # hands it on to calls with empty input; a body past the room is refused, so what
        # is owed then is never asked for.
        pieces: list[bytes] = []
        size = 0
        while size < room and not decompressor.is_finished():
            step = min(room - size, BROTLI_STEP_BYTES)
            piece = decompressor.process(raw, output_buffer_limit=step)
            raw = b""
            if not piece:
                if decompressor.can_accept_more_data():
                    break  # all of this chunk is inflated: the next one is needed
                raise brotli.error("the decoder gave nothing while holding input")
            pieces.append(piece)
            size += len(piece)
        return pieces

    return _Inflater(inflate, decompressor.is_finished)


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
