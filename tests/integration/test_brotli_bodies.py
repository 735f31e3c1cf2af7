"""Brotli bodies from a loopback server, read as Skinport's are: inflated within the bound,
a bomb stopped at it with memory kept near it, a cut-off or invalid stream named, and a
`br` body refused to a caller (DMarket) that never asked for it."""

from __future__ import annotations

import json
import tracemalloc
from http.server import BaseHTTPRequestHandler

import brotli
import httpx
import pytest

from worker.markets.fleet import response_body
from worker.testing.loopback import LoopbackService

# A list like Skinport's, about 1.4 MB: within DMarket's 2 MiB bound.
LIST = json.dumps(
    [{"market_hash_name": f"AK-47 | Redline #{n}", "min_price": n / 100} for n in range(20_000)]
).encode()
BOMB_BYTES = 200 * 1024 * 1024
BOUND = response_body.BODY_MAX_BYTES


class BodyServer(LoopbackService):
    """Answers every GET with `body` sent as `Content-Encoding: encoding`."""

    def __init__(self, body: bytes, encoding: str = "br") -> None:
        super().__init__()
        self.body = body
        self.encoding = encoding

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake: BodyServer = self.server.fake  # type: ignore[attr-defined]
                self.send_response(200)
                self.send_header("Content-Encoding", fake.encoding)
                self.send_header("Content-Length", str(len(fake.body)))
                self.end_headers()
                self.wfile.write(fake.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def read_from(
    body: bytes, accept_encoding: str = "br", max_bytes: int = BOUND
) -> response_body.Body:
    with BodyServer(body) as server, httpx.Client(base_url=server.base_url) as client:
        request = client.build_request("GET", "/", headers={"Accept-Encoding": accept_encoding})
        response = client.send(request, stream=True)
        try:
            return response_body.read(response, max_bytes, accept_encoding)
        finally:
            response.close()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    compressed: bytes = brotli.compress(b"\0" * BOMB_BYTES, quality=5)
    return compressed


def test_a_brotli_body_within_the_bound_is_read_whole() -> None:
    # Given a list of 20,000 items sent in Brotli, When it is read asking for br
    answer = read_from(brotli.compress(LIST))
    # Then it is the list, whole
    assert answer.cut_short is None
    assert answer.data == LIST


def test_a_brotli_bomb_stops_at_the_bound_without_inflating_it(bomb: bytes) -> None:
    # Given 200 MB of zeros sent as a Brotli body of a few hundred bytes
    assert len(bomb) < 1024
    # When it is read within the 2 MiB bound
    tracemalloc.start()
    try:
        answer = read_from(bomb)
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Then it stops at the bound, holding the bound's first bytes
    assert answer.cut_short == f"over {BOUND} bytes"
    assert answer.data == b"\0" * BOUND
    # And memory held the bound's bytes twice at most (the pieces and their join) and one
    # inflating step, not the 200 MB the body inflates to
    assert peak_bytes < 2 * BOUND + 8 * response_body.BROTLI_STEP_BYTES


def test_a_brotli_bomb_under_a_larger_bound_stops_at_that_bound(bomb: bytes) -> None:
    # Given the bound Skinport's whole list is read within, a quarter of the bomb
    skinport_bound = 64 * 1024 * 1024
    tracemalloc.start()
    try:
        answer = read_from(bomb, max_bytes=skinport_bound)
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert answer.cut_short == f"over {skinport_bound} bytes"
    assert len(answer.data) == skinport_bound
    assert peak_bytes < 2 * skinport_bound + 8 * response_body.BROTLI_STEP_BYTES


def test_a_cut_off_brotli_stream_is_named() -> None:
    # Given the first half of a Brotli body, the connection closed after it
    compressed = brotli.compress(LIST)
    # When it is read, Then it is not taken for the list
    answer = read_from(compressed[: len(compressed) // 2])
    assert answer.cut_short == "not valid br (cut off)"


def test_bytes_that_are_not_brotli_are_named() -> None:
    answer = read_from(b"this is not brotli at all, only text")
    assert answer.cut_short is not None
    assert answer.cut_short.startswith("not valid br (")


def test_a_brotli_body_to_a_caller_that_asked_for_gzip_only_is_refused_unread() -> None:
    # Given DMarket's Accept-Encoding, which never names br
    answer = read_from(brotli.compress(LIST), accept_encoding=response_body.ACCEPT_ENCODING)
    # Then a br answer is one not asked for, as before
    assert answer == response_body.Body(b"", "Content-Encoding 'br' was not asked for")
