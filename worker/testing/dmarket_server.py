"""A fake DMarket: a real HTTP server on loopback serving the item listing from a list,
as v1 market items and as v2 offers, with aggregated prices and last sales beside them.

It paginates with opaque cursors, checks the query the way the real API would, records
every request with its arrival time and TCP connection, and can be scripted to answer
chosen requests with rate limits, server errors or broken bodies. Like the real API it can
enforce a request budget (429 with Retry-After past it) and verify Ed25519-signed requests.
Like the real API it can cap the total it reports (DMarket's stops at 10,000), and its
listing can live: listings sold and listed between requests shift the positions after them.
It publishes customized fees (worker.testing.dmarket_fees), and can be told to answer them
with a broken body.
In live mode (`live=`, worker.testing.dmarket_live) the v2 offers are a feed listed at a
steady rate, newest first, walked by a key-set cursor (worker.testing.dmarket_live_pages).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from worker.testing.dmarket_budgets import EVERY_CLASS, Budgets, requests_over_rate
from worker.testing.dmarket_fees import FEES_PATH, FakeFees, FakeReducedFee, fees_answer
from worker.testing.dmarket_http import Handler
from worker.testing.dmarket_live import LiveListing, LiveOffer, ManualClock
from worker.testing.dmarket_live_pages import LiveQueryRefused, live_offers_page
from worker.testing.dmarket_replies import (
    Answer,
    Quirk,
    RecordedRequest,
    ScriptedReply,
    dmarket_item,
    drop_field,
    listed_cents,
    locked_item,
    query_problem,
)
from worker.testing.dmarket_signature import SignatureCheck
from worker.testing.dmarket_v2_replies import (
    AGGREGATED_PRICES_PATH,
    LAST_SALES_PATH,
    OFFERS_PATH,
    FakeSale,
    aggregated_prices,
    bids_of,
    error_body_for,
    last_sales,
    offers_by_title,
    offers_page,
    offers_query_problem,
)
from worker.testing.loopback import LoopbackService

# The fake's whole surface, one import for tests and the bench.
__all__ = [
    "FakeDMarket",
    "FakeFees",
    "FakeReducedFee",
    "FakeSale",
    "LiveListing",
    "LiveOffer",
    "ManualClock",
    "Quirk",
    "RecordedRequest",
    "ScriptedReply",
    "TotalFormat",
    "dmarket_item",
    "requests_over_rate",
]

ITEMS_PATH = "/exchange/v1/market/items"

TotalFormat = Literal["object", "int", "missing"]


class FakeDMarket(LoopbackService):
    """The fake server; use as a context manager and point the client at `.url`."""

    def __init__(
        self,
        items: Sequence[Mapping[str, Any]] = (),
        *,
        total_format: TotalFormat = "object",
        scripted: Mapping[int, ScriptedReply] | None = None,
        requests_per_second: int | None = None,
        class_budgets: Mapping[str, int] | None = None,
        public_key_hex: str | None = None,
        total_cap: int | None = None,
        best_bids: Mapping[str, tuple[int, int]] | None = None,
        sales: Mapping[str, Sequence[FakeSale]] | None = None,
        quirk: Quirk | None = None,
        live: LiveListing | None = None,
        fees: FakeFees | None = None,
        locked: Mapping[str, int | None] | None = None,
    ) -> None:
        """`requests_per_second`: answer 429 past that many requests in any second.
        `class_budgets`: instead, requests per second of each endpoint class
        ("market_items", "other", "last_sales", "fees"), as DMarket counts them; every answer
        then carries the rate-limit headers of its class (worker.testing.dmarket_budgets).

        `best_bids`: title -> (best buy order in cents, order count), served as aggregated
        prices; by default each listed title's highest suggested price with one order.
        `sales`: title -> the last sales, newest first (none by default): each a price in
        cents (dated a minute apart back from the moment they are asked for) or (price in
        cents, Unix seconds); `set_sales` changes them.
        `locked`: offer id -> lock days (None: locked for an unknown time). Such a listing
        carries `extra.lockStatus` true (and `extra.tradeLockDuration` in seconds, when
        the days are given) in v1, and `locked: true` in v2.
        `quirk`: answer as real DMarket sometimes does (dmarket_replies.Quirk).

        `total_cap`: report at most this many items as the total, as DMarket does.

        `public_key_hex`: require requests signed by this DMarket key (401 otherwise).
        `headers` given to `_answer` are keyed in lower case.

        `live`: serve this live listing as the v2 offers instead of `items` (which still
        serve the v1 items); its titles' best bids join `best_bids`, taking precedence.
        Budgets, outages, scripted replies, signatures and the total's cap and format
        apply as to the static listing; quirks do not.

        `fees`: the customized fees published (default: 5 %, at least a cent, no reduced
        fee); `set_fees` changes them, `break_fees` serves a broken body instead.
        """
        super().__init__()
        budgets = dict(class_budgets or {})
        if requests_per_second is not None:
            budgets = {EVERY_CLASS: requests_per_second}
        self._budgets = Budgets(budgets)
        self._outage_until = 0.0
        self._signatures = SignatureCheck(public_key_hex)
        lock_days = dict(locked or {})
        self._items = [
            locked_item(item, lock_days[item["itemId"]])
            if item.get("itemId") in lock_days
            else copy.deepcopy(dict(item))
            for item in items
        ]
        self._total_format = total_format
        self._total_cap = total_cap
        self._scripted = dict(scripted or {})
        self._scripted_on: dict[tuple[str, int], ScriptedReply] = {}
        self._requests_by_path: dict[str, int] = {}
        self._best_bids = dict(best_bids) if best_bids is not None else bids_of(self._items)
        self._live = live
        if live is not None:
            self._best_bids.update(live.best_bids())
        self._sales = {title: list(sold) for title, sold in (sales or {}).items()}
        self._quirk = quirk
        self._fees = fees or FakeFees()
        self._broken_fees: bytes | None = None
        self._fresh_cursors = 0
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        # Cursors are hashes under a per-server salt: opaque to the client, stable per offset.
        self._cursor_salt = secrets.token_hex(8)
        self._offsets_by_cursor: dict[str, int] = {}

    @property
    def url(self) -> str:
        return self.base_url

    def _handler(self) -> type[Handler]:
        return Handler

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The requests to `path` (e.g. "/marketplace-api/v2/offers"), answered or refused."""
        return [request for request in self.requests if request.path == path]

    @property
    def live(self) -> LiveListing:
        """The live listing served as the v2 offers: the oracle of what was listed."""
        if self._live is None:
            raise RuntimeError("this FakeDMarket was made without live=")
        return self._live

    @property
    def connections(self) -> set[tuple[str, int]]:
        """Every TCP connection (client host, port) that carried a request."""
        return {request.connection for request in self.requests}

    @property
    def rate_limited(self) -> list[RecordedRequest]:
        """The requests answered 429 because they were over the budget or scripted so."""
        return [request for request in self.requests if request.status == 429]

    def script(self, request_number: int, reply: ScriptedReply, *, path: str | None = None) -> None:
        """Answer the `request_number`-th request (0-based, every request counts) with
        `reply`; with `path`, the `request_number`-th request to that path (a listing page
        whatever lookups of fees, bids and sales come between)."""
        with self._lock:
            if path is None:
                self._scripted[request_number] = reply
            else:
                self._scripted_on[(path, request_number)] = reply

    @property
    def fees(self) -> FakeFees:
        """The customized fees published now: the oracle of a fee (`fees.fee_for`)."""
        with self._lock:
            return self._fees

    def set_fees(self, fees: FakeFees) -> None:
        """Publish other fees from the next request on (DMarket's daily list changed)."""
        with self._lock:
            self._fees = fees

    def break_fees(self, body: bytes | None) -> None:
        """Answer every customized-fees request 200 with `body` (None: the fees again)."""
        with self._lock:
            self._broken_fees = body

    def set_sales(self, sales: Mapping[str, Sequence[FakeSale]]) -> None:
        """Report these titles' last sales from the next request on (others unchanged)."""
        with self._lock:
            self._sales.update({title: list(sold) for title, sold in sales.items()})

    def set_best_bids(self, best_bids: Mapping[str, tuple[int, int]]) -> None:
        """Serve these titles' best bids from the next request on (others unchanged)."""
        with self._lock:
            self._best_bids.update(best_bids)

    def remove_items(self, item_ids: Sequence[str]) -> None:
        """Sell these listings: later requests no longer see them, and those after move up."""
        doomed = set(item_ids)
        with self._lock:
            self._items = [item for item in self._items if item["itemId"] not in doomed]

    def insert_items(self, position: int, items: Sequence[Mapping[str, Any]]) -> None:
        """List new items at `position` of the listing: those after them move down."""
        with self._lock:
            self._items[position:position] = [copy.deepcopy(dict(item)) for item in items]

    def _answer(
        self,
        raw_path: str,
        headers: Mapping[str, str],
        connection: tuple[str, int],
        method: str = "GET",
        body: bytes = b"",
    ) -> Answer:
        url = urlsplit(raw_path)
        path = url.path
        query_pairs = parse_qsl(url.query, keep_blank_values=True)
        query = dict(query_pairs)
        received_at = time.monotonic()
        signed = self._signatures.verdict(method, raw_path, body, headers)
        with self._lock:
            request_number = len(self._requests)
            on_path = self._requests_by_path.get(path, 0)
            self._requests_by_path[path] = on_path + 1
            reply = self._scripted_on.get(
                (path, on_path), self._scripted.get(request_number, ScriptedReply())
            )
            spent = self._budgets.spend(path, received_at)
            answer = self._gatekeeper(path, reply, signed, spent.over_wait_seconds, received_at)
            status = answer.status if answer is not None else reply.status
            self._requests.append(
                RecordedRequest(path, query, received_at, connection, status, signed, method, body)
            )
        if answer is None:
            answer = self._served(method, path, query, query_pairs, body, reply)
        return Answer(answer.status, answer.body, {**spent.headers, **answer.headers})

    def _served(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        query_pairs: list[tuple[str, str]],
        body: bytes,
        reply: ScriptedReply,
    ) -> Answer:
        if reply.delay_seconds:
            self._closing.wait(reply.delay_seconds)
        if reply.body is not None:
            return Answer(reply.status, reply.body, dict(reply.headers))
        if (method, path) == ("POST", AGGREGATED_PRICES_PATH):
            return self._aggregated_prices(body, reply)
        if (method, path) == ("GET", LAST_SALES_PATH):
            with self._lock:
                sales = dict(self._sales)
            answer = last_sales(query, sales, int(time.time()))
            return Answer(*answer, dict(reply.headers))
        if (method, path) == ("GET", FEES_PATH):
            with self._lock:
                fees, broken = self._fees, self._broken_fees
            return Answer(*fees_answer(query, fees, broken), dict(reply.headers))
        return self._listing(path, query, query_pairs, reply)

    def outage(self, seconds: float) -> None:
        """Answer every request with 503 for the next `seconds`: DMarket is down."""
        with self._lock:
            self._outage_until = time.monotonic() + seconds

    def _gatekeeper(
        self,
        path: str,
        reply: ScriptedReply,
        signed: bool | None,
        over_budget_wait: float | None,
        received_at: float,
    ) -> Answer | None:
        """The refusal the real API would give before serving anything, or None."""
        if received_at < self._outage_until:
            return Answer(503, error_body_for(path, "service unavailable", "Unavailable"))
        if self._signatures.required and not signed:
            return Answer(401, error_body_for(path, "Unauthorized", "Unauthorized"))
        if over_budget_wait is not None and reply.status != 429:
            retry_after = str(max(1, math.ceil(over_budget_wait)))
            refusal = error_body_for(path, "too many requests", "TooManyRequests")
            return Answer(429, refusal, {"Retry-After": retry_after})
        return None

    def _aggregated_prices(self, body: bytes, reply: ScriptedReply) -> Answer:
        with self._lock:
            offers = offers_by_title(self._items)
        if self._live is not None:
            offers = self._live.offers_by_title(self._live.now(), offers)
        return Answer(*aggregated_prices(body, self._best_bids, offers), dict(reply.headers))

    def _listing(
        self,
        path: str,
        query: dict[str, str],
        query_pairs: list[tuple[str, str]],
        reply: ScriptedReply,
    ) -> Answer:
        if path not in (ITEMS_PATH, OFFERS_PATH):
            return Answer(404, error_body_for(path, f"no route {path}", "NotFound"))
        if len(query) != len(query_pairs):
            return Answer(400, error_body_for(path, "a query parameter was repeated"))
        problem = query_problem(query) if path == ITEMS_PATH else offers_query_problem(query)
        if problem is None and path == OFFERS_PATH and self._live is not None:
            return self._live_listing(query, reply)
        if problem is None and query.get("cursor", "") not in ("", *self._offsets_by_cursor):
            problem = f"unknown cursor {query['cursor']!r}"
        if problem is not None:
            return Answer(400, error_body_for(path, problem))
        page = self._page(query)
        if path == OFFERS_PATH:
            page = offers_page(page)
        return _page_answer(page, page["objects"] if path == ITEMS_PATH else page["items"], reply)

    def _live_listing(self, query: Mapping[str, str], reply: ScriptedReply) -> Answer:
        """The live listing's page as v2 offers, its total capped and shaped as configured."""
        live = self.live
        now = live.now()
        try:
            served = live_offers_page(live.visible(now), query, now)
        except LiveQueryRefused as refused:
            return Answer(400, error_body_for(OFFERS_PATH, str(refused)))
        total = served.total if self._total_cap is None else min(served.total, self._total_cap)
        # v2 carries an int total; "missing" serves null, as the static v2 page does.
        shown = None if self._total_format == "missing" else total
        page = {"items": served.items, "total": shown, "cursor": served.cursor}
        return _page_answer(page, served.items, reply)

    def _page(self, query: Mapping[str, str]) -> dict[str, Any]:
        low = int(query.get("priceFrom", 0))
        high = int(query["priceTo"]) if "priceTo" in query else None
        with self._lock:
            listed = list(self._items)
        matching = [
            item
            for item in listed
            if (cents := listed_cents(item)) is None
            or (low <= cents and (high is None or cents <= high))
        ]
        offset = self._offsets_by_cursor[query["cursor"]] if query.get("cursor") else 0
        end = offset + int(query["limit"])
        page: dict[str, Any] = {
            "objects": copy.deepcopy(matching[offset:end]),
            "cursor": self._cursor_for(end) if end < len(matching) else "",
        }
        quirk = self._quirk
        if quirk is not None and offset >= quirk.at_offset:
            if quirk.kind == "empty_pages":
                page = {"objects": [], "cursor": self._cursor_for(offset, fresh=True)}
            elif query.get("cursor"):
                page["cursor"] = query["cursor"]
        total = len(matching) if self._total_cap is None else min(len(matching), self._total_cap)
        if self._total_format == "object":
            page["total"] = {"items": total, "offers": total, "orders": 0}
        elif self._total_format == "int":
            page["total"] = total
        return page

    def listing(self) -> list[dict[str, Any]]:
        """The listing objects as listed now (a copy): the truth a test walks without us."""
        with self._lock:
            return copy.deepcopy(self._items)

    def _cursor_for(self, offset: int, *, fresh: bool = False) -> str:
        """The cursor of `offset`: the same each time, or with `fresh` a new one each time."""
        with self._lock:
            if fresh:
                self._fresh_cursors += 1
            salt = f"{self._cursor_salt}:{self._fresh_cursors if fresh else ''}"
            cursor = hashlib.sha256(f"{salt}:{offset}".encode()).hexdigest()[:24]
            self._offsets_by_cursor[cursor] = offset
        return cursor


def _page_answer(page: Mapping[str, Any], listed: list[Any], reply: ScriptedReply) -> Answer:
    """A listing page served, minus the field `reply` drops from its first object."""
    if reply.drop_field and listed:
        drop_field(listed[0], reply.drop_field)
    return Answer(reply.status, json.dumps(page).encode(), dict(reply.headers))
