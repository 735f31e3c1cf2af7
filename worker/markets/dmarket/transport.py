"""Every HTTP request marketscan makes to DMarket, sent here and named by its endpoint class.

One door: the budget of the request's class is drawn on, the request is signed, sent, its
body read within a bound (worker.markets.fleet.response_body), and its failure turned into the
market error it means. Requests are counted per (endpoint class, status) in `send`, the
only place that sees them all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Final

import httpx

from worker import observe
from worker.errors import MarketError, PermanentMarketError, RetryableMarketError
from worker.markets.dmarket.auth import (
    PUBLIC_KEY_VARIABLE,
    SECRET_KEY_VARIABLE,
    RequestSigner,
)
from worker.markets.fleet import response_body
from worker.markets.fleet.backoff import non_negative_seconds, retry_after_from_headers
from worker.markets.fleet.breaker import CircuitBreaker, MarketUnavailable
from worker.markets.fleet.budget import RequestBudget
from worker.markets.fleet.response_body import Body

# The endpoint classes: the names budgets, logs and metrics know DMarket's requests by.
MARKET_ITEMS: Final = "market_items"
AGGREGATED_PRICES: Final = "aggregated_prices"
LAST_SALES: Final = "last_sales"
FEES: Final = "fees"
ENDPOINT_CLASSES: Final = (MARKET_ITEMS, AGGREGATED_PRICES, LAST_SALES, FEES)
# Enough of an error body to tell "bad gameId" from "blocked", short enough for a log line.
BODY_EXCERPT_CHARS: Final = 200
# What an excerpt is cut from: a few times its length, as whitespace is squeezed out first;
# never the whole of a body that may be megabytes.
_EXCERPT_SOURCE_CHARS: Final = 4 * BODY_EXCERPT_CHARS

UNSIGNED_REFUSED: Final = (
    f"DMarket refused an unsigned request: set {PUBLIC_KEY_VARIABLE} and {SECRET_KEY_VARIABLE}"
)
SIGNED_REFUSED: Final = (
    f"DMarket refused the keys in {PUBLIC_KEY_VARIABLE} and {SECRET_KEY_VARIABLE}: check that "
    "they are the pair DMarket issued and still valid, and that the host's clock is right"
)


class DMarketTransport:
    """Sends DMarket requests of every endpoint class through one keep-alive client."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        budgets: Mapping[str, RequestBudget | None] | None = None,
        signer: RequestSigner | None = None,
        max_pause_seconds: float = 60.0,
        drain_requested: Callable[[], bool] = lambda: False,
        breaker: CircuitBreaker | None = None,
        priority: bool = False,
    ) -> None:
        """`budgets`: the fleet's budget per endpoint class (missing or None: no limit).
        `breaker`: the fleet's circuit breaker for DMarket (None: every failure is the
        request's own).
        `priority`: listing requests (MARKET_ITEMS) take the budget's priority lane, ahead
        of every full scan (a fresh watch's poll); the other classes queue as usual."""
        self.client = client
        self.signed = signer is not None
        self._budgets = dict(budgets or {})
        self._signer = signer
        self._max_pause_seconds = max_pause_seconds
        self._drain_requested = drain_requested
        self._breaker = breaker
        self._priority = priority

    def send(
        self,
        endpoint: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: object | None = None,
        *,
        unreadable: type[MarketError] = PermanentMarketError,
    ) -> object:
        """The decoded JSON answer of a successful request; the market error otherwise.

        `unreadable`: what a body that cannot be read is (not JSON, past the size bound):
        a lookup may ask again; a page not.
        """
        assert endpoint in ENDPOINT_CLASSES, endpoint
        content = None if body is None else json.dumps(body, separators=(",", ":"))
        headers = {"Accept-Encoding": response_body.ACCEPT_ENCODING}
        if content is not None:
            headers["Content-Type"] = "application/json"
        request = self.client.build_request(
            method, path, params=params, content=content, headers=headers
        )
        if self._breaker is not None:
            self._breaker.before_request()
        budget = self._budgets.get(endpoint)
        if budget is not None:
            budget.acquire(
                self._drain_requested, priority=self._priority and endpoint == MARKET_ITEMS
            )
        if self._signer is not None:
            # Signed last, just before sending: DMarket refuses stale X-Sign-Date values.
            request.headers.update(
                self._signer.headers(method, request.url.raw_path.decode(), content or "")
            )
        try:
            response = self.client.send(request, stream=True)
            try:
                answer = response_body.read(response)
            finally:
                response.close()
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            observe.market_request("dmarket", endpoint, type(exc).__name__)
            cause = f"DMarket request failed: {exc!r}"
            self._judge_outage(cause, at_once=False)
            raise RetryableMarketError(cause) from exc
        except httpx.TransportError as exc:
            # Proxy and local protocol errors, unsupported schemes: configuration, not weather.
            raise PermanentMarketError(f"DMarket request could not be made: {exc!r}") from exc
        observe.market_request("dmarket", endpoint, response.status_code)
        self._judge_response(response, answer)
        if budget is not None:
            self._follow_limits(budget, response)
        return self._decoded(response, answer, unreadable)

    def _follow_limits(self, budget: RequestBudget, response: httpx.Response) -> None:
        if response.status_code == 429:
            self._pause_fleet(budget, response.headers)
        elif (wait_seconds := exhausted_wait(response.headers)) is not None:
            # The server's window for this class is spent: the whole fleet waits it out
            # instead of finding out through a 429.
            budget.pause(min(wait_seconds, self._max_pause_seconds))

    def _judge_response(self, response: httpx.Response, answer: Body) -> None:
        """Tell the breaker what this answer says of DMarket's health."""
        status = response.status_code
        if self._breaker is None or status == 429:
            return  # a 429 is our pace, not DMarket's health
        if status >= 500:
            self._judge_outage(f"DMarket answered {status}: {error_text(answer)}", False)
        elif status in (401, 403):
            advice = SIGNED_REFUSED if self.signed else UNSIGNED_REFUSED
            refused = f"{advice} (DMarket answered {status}: {error_text(answer)})"
            self._judge_outage(refused, True)
        else:
            self._breaker.record_success()

    def _judge_outage(self, cause: str, at_once: bool) -> None:
        """Count a failure; once the breaker is open, this request waits with the fleet
        (MarketUnavailable) instead of spending one of its page's retries."""
        if self._breaker is not None and self._breaker.record_failure(cause, at_once=at_once):
            raise MarketUnavailable(f"market unavailable: {cause}")

    def _pause_fleet(self, budget: RequestBudget, headers: httpx.Headers) -> None:
        """Over DMarket's limit, the whole fleet is: pause every process, not just this one.

        Without a wait in the answer, one budget window lets the server's window clear;
        a huge one is capped as the page's own retry wait is, so a broken header cannot
        park the fleet for hours.
        """
        asked_seconds = retry_after_from_headers(headers)
        if asked_seconds is None:
            asked_seconds = budget.window_seconds
        budget.pause(min(asked_seconds, self._max_pause_seconds))

    def _decoded(
        self, response: httpx.Response, answer: Body, unreadable: type[MarketError]
    ) -> object:
        status = response.status_code
        if status == 429 or status >= 500:
            raise RetryableMarketError(
                f"DMarket answered {status}: {error_text(answer)}",
                retry_after_seconds=retry_after_from_headers(response.headers),
            )
        if status == 401:
            advice = SIGNED_REFUSED if self.signed else UNSIGNED_REFUSED
            raise PermanentMarketError(f"{advice} (DMarket answered 401: {error_text(answer)})")
        if not 200 <= status < 300:
            raise PermanentMarketError(f"DMarket answered {status}: {error_text(answer)}")
        if answer.cut_short is not None:
            raise unreadable(f"response body: {answer.cut_short}: {excerpt(answer)}")
        try:
            return response_body.json_of(answer.data)
        except ValueError as exc:
            cause = _shortened(str(exc))
            raise unreadable(f"response body: not valid JSON ({cause}): {excerpt(answer)}") from exc


def error_text(answer: Body) -> str:
    """What DMarket said went wrong: `code: message` from either casing of its error body
    (`/exchange` sends {"code","message"}, `marketplace-api` {"Code","Message"}), else an
    excerpt of the body."""
    try:
        payload = response_body.json_of(answer.data)
    except ValueError:
        return excerpt(answer)
    if isinstance(payload, dict):
        code = payload.get("code", payload.get("Code"))
        message = payload.get("message", payload.get("Message"))
        if isinstance(message, str) and message:
            text = f"{code}: {message}" if isinstance(code, str) and code else message
            return _shortened(" ".join(text[:_EXCERPT_SOURCE_CHARS].split()))
    return excerpt(answer)


def excerpt(answer: Body) -> str:
    text = answer.data[:_EXCERPT_SOURCE_CHARS].decode("utf-8", errors="replace")
    return _shortened(" ".join(text.split())) or "<empty body>"


def _shortened(text: str) -> str:
    if len(text) > BODY_EXCERPT_CHARS:
        return text[:BODY_EXCERPT_CHARS] + "..."
    return text


# What a response says of the budget left in its class, in either of DMarket's spellings.
REMAINING_HEADERS: Final = ("X-RateLimit-Remaining-Second", "RateLimit-Remaining")
# No RateLimit-Reset beside a spent budget: DMarket's windows are one second.
DEFAULT_RESET_SECONDS: Final = 1.0


def exhausted_wait(headers: httpx.Headers) -> float | None:
    """The wait until the server's window frees when a response says none is left, else None.

    The wait is RateLimit-Reset (seconds), or one window when the reset is not given.
    """
    if not any(headers.get(name, "").strip() == "0" for name in REMAINING_HEADERS):
        return None
    reset = non_negative_seconds(headers.get("RateLimit-Reset", "").strip())
    return DEFAULT_RESET_SECONDS if reset is None else reset
