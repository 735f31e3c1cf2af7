"""A fake Skinport: a real HTTP server on loopback speaking Skinport's public API, its
items (`GET /v1/items`) and sales history (`GET /v1/sales/history`) served from a list.

Like Skinport it answers every body in Brotli and refuses (406) a client that does not
accept `br`, checks app_id and currency (400), and allows a few requests per window over
both endpoints together (8 per 5 minutes; 429 with Retry-After past it). It records every
request, and can be told to fail the next ones (worker.testing.skinport_replies.Failure).

A request meets, in order: the rate limit, the Accept-Encoding check, a failure it was told
to give, the query's checks. A request refused 429 is not counted in the window, so its
Retry-After holds; every other request is.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from worker.testing import skinport_replies
from worker.testing.loopback import LoopbackHTTPServer, LoopbackService
from worker.testing.skinport_replies import Failure, FakeSkinportItem, Reply, SkinportRequest

# The fake's whole surface, one import for tests and the bench.
__all__ = ["Failure", "FakeSkinport", "FakeSkinportItem", "SkinportRequest"]

# Skinport's public limit: 8 requests per 5 minutes, both endpoints together.
REQUESTS_PER_WINDOW = 8
WINDOW_SECONDS = 300.0
# How long a "hang" holds its answer: longer than any client here waits.
HANG_SECONDS = 30.0


class _Scripted:
    """A failure told to the fake, with how long a hang lasts."""

    def __init__(self, failure: Failure, hang_seconds: float) -> None:
        self.failure = failure
        self.hang_seconds = hang_seconds


class FakeSkinport(LoopbackService):
    """The fake server; use as a context manager and point the client at `.url`."""

    def __init__(
        self,
        items: Sequence[FakeSkinportItem] = (),
        *,
        requests_per_window: int = REQUESTS_PER_WINDOW,
        window_seconds: float = WINDOW_SECONDS,
    ) -> None:
        """`requests_per_window` requests are allowed in any `window_seconds` (sliding)."""
        super().__init__()
        self._items = list(items)
        self._requests_per_window = requests_per_window
        self._window_seconds = window_seconds
        self._counted: collections.deque[float] = collections.deque()
        self._failures: dict[str | None, collections.deque[_Scripted]] = {}
        self._requests: list[SkinportRequest] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT, no trailing slash."""
        return self.base_url

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return _Handler

    def set_items(self, items: Sequence[FakeSkinportItem]) -> None:
        """Serve these items from the next request on."""
        with self._lock:
            self._items = list(items)

    def fail_next(
        self,
        count: int,
        how: Failure,
        *,
        path: str | None = None,
        hang_seconds: float = HANG_SECONDS,
    ) -> None:
        """Answer the next `count` requests (to `path` only, when given) as `how` says.

        Failures queue after any told before; one to a path goes before one to any path.
        A request refused 429 or 406 spends none. A "hang" serves the proper answer after
        `hang_seconds`, or when the fake stops.
        """
        if not isinstance(how, int) and how != "hang":
            skinport_replies.failure_reply(how)  # refuse an unknown failure now, not later
        with self._lock:
            queue = self._failures.setdefault(path, collections.deque())
            queue.extend(_Scripted(how, hang_seconds) for _ in range(count))

    @property
    def requests(self) -> list[SkinportRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[SkinportRequest]:
        """The requests to `path` (e.g. "/v1/items"), answered or refused."""
        return [request for request in self.requests if request.path == path]

    def count(self, status: int) -> int:
        """How many requests were answered `status` (406: no br offered; 429: over the
        window)."""
        return sum(1 for request in self.requests if request.status == status)

    def _answer(self, raw_path: str, headers: Mapping[str, str]) -> Reply:
        url = urlsplit(raw_path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        received_at = time.monotonic()
        with self._lock:
            reply = self._gatekeeper(headers, received_at)
            scripted = None if reply is not None else self._next_failure(url.path)
            if reply is None and scripted is not None and scripted.failure != "hang":
                reply = skinport_replies.failure_reply(scripted.failure)
            if reply is None:
                reply = self._served(url.path, query)
            self._requests.append(
                SkinportRequest(url.path, query, dict(headers), received_at, reply.status)
            )
        if scripted is not None and scripted.failure == "hang":
            self._closing.wait(scripted.hang_seconds)
        return reply

    def _gatekeeper(self, headers: Mapping[str, str], received_at: float) -> Reply | None:
        """The 429 or 406 Skinport gives before anything else, or None; counts the request
        in the window unless it is refused 429. Called under the lock."""
        while self._counted and self._counted[0] <= received_at - self._window_seconds:
            self._counted.popleft()
        if len(self._counted) >= self._requests_per_window:
            wait = self._counted[0] + self._window_seconds - received_at
            retry_after = str(max(1, math.ceil(wait)))
            return skinport_replies.error_reply(
                429, "rate_limit_exceeded", "Too many requests", **{"Retry-After": retry_after}
            )
        self._counted.append(received_at)
        if not skinport_replies.accepts_brotli(headers.get("accept-encoding", "")):
            return skinport_replies.error_reply(
                406, "not_acceptable", "Accept-Encoding must include br"
            )
        return None

    def _next_failure(self, path: str) -> _Scripted | None:
        """The failure this request was told to give, spent. Called under the lock."""
        for key in (path, None):
            queue = self._failures.get(key)
            if queue:
                return queue.popleft()
        return None

    def _served(self, path: str, query: Mapping[str, str]) -> Reply:
        """The proper answer to a request past the gate. Called under the lock."""
        if path not in (skinport_replies.ITEMS_PATH, skinport_replies.SALES_HISTORY_PATH):
            return skinport_replies.error_reply(404, "not_found", f"no route {path}")
        problem = skinport_replies.query_problem(query)
        if problem is not None:
            return problem
        if path == skinport_replies.ITEMS_PATH:
            listed = skinport_replies.items_answer(self._items, query, int(time.time()))
            return skinport_replies.json_reply(200, listed)
        return skinport_replies.json_reply(
            200, skinport_replies.sales_history_answer(self._items, query)
        )


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, as the real API: a client that pools connections reuses one.
    protocol_version = "HTTP/1.1"

    # GET only, as Skinport's public API: any other method is answered 501.
    def do_GET(self) -> None:
        fake = cast(FakeSkinport, cast(LoopbackHTTPServer, self.server).fake)
        reply = fake._answer(self.path, {name.lower(): v for name, v in self.headers.items()})
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (a timeout test); nobody is left to answer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output to the test's own story
