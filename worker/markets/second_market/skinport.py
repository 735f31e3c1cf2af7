"""Skinport's whole price list for one game, read from its public API: the lowest listing of
every title (`GET /v1/items`) and its sales in the last 7 days (`GET /v1/sales/history`).

Skinport allows 8 requests per 5 minutes from one address, over both endpoints, and caches
each answer 5 minutes itself: the fleet reads the list once per life
(worker.markets.second_market.cache), and every request draws on one fleet-wide
budget and passes Skinport's own circuit breaker, as DMarket's do
(worker.markets.dmarket.transport). Skinport answers only in Brotli (406 to a client that
does not offer it); the body is inflated within a bound (worker.markets.fleet.response_body).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Final

import httpx

from worker import broker_redis, observe
from worker.domain.price_list import MarketPrice, PriceList, currency_of
from worker.errors import InvalidInput, PermanentMarketError, RetryableMarketError
from worker.markets.fleet import process_clients, response_body
from worker.markets.fleet.backoff import retry_after_from_headers
from worker.markets.fleet.breaker import CircuitBreaker, MarketUnavailable
from worker.markets.fleet.budget import RequestBudget
from worker.markets.second_market import skinport_body
from worker.settings import Settings

MARKET: Final = "skinport"
# Skinport's app ids by our game names (worker.domain.listing.GAME_IDS).
APP_IDS: Final = {"csgo": 730, "cs2": 730, "dota2": 570, "tf2": 440, "rust": 252490}
ITEMS_PATH: Final = "/v1/items"
SALES_HISTORY_PATH: Final = "/v1/sales/history"
# The endpoints as budgets, logs and marketscan_market_requests_total{endpoint} name them.
ITEMS_ENDPOINT: Final = "items"
SALES_HISTORY_ENDPOINT: Final = "sales_history"
# Only Brotli: Skinport refuses a client that does not offer it, and answers nothing else.
ACCEPT_ENCODING: Final = "br"
# Bytes of an answer once inflated: the CS2 list is about 10 MB.
BODY_MAX_BYTES: Final = 64 * 1024 * 1024


class SkinportPriceList:
    """A PriceListSource reading Skinport's list of one game (`app_id`) in `currency`."""

    market = MARKET

    def __init__(
        self,
        client: httpx.Client,
        *,
        app_id: int,
        currency: str = "USD",
        budget: RequestBudget | None = None,
        breaker: CircuitBreaker | None = None,
        drain_requested: Callable[[], bool] = lambda: False,
        max_pause_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`budget`: the fleet's Skinport budget (None: no limit). `breaker`: Skinport's
        circuit breaker (None: every failure is the request's own). A 429 pauses the budget
        for its Retry-After, at most `max_pause_seconds`."""
        self.currency = currency_of(currency)
        self._client = client
        self._app_id = app_id
        self.budget = budget
        self.breaker = breaker
        self._drain_requested = drain_requested
        self._max_pause_seconds = max_pause_seconds
        self._clock = clock

    def fetch(self) -> PriceList:
        """The list as Skinport answers now; RetryableMarketError naming what failed.

        Items are read, and checked, before the history is asked for: a broken list spends
        one request of the 8, not two.
        """
        fetched_at = self._clock()
        query = {"app_id": str(self._app_id), "currency": self.currency}
        items = self._get(ITEMS_ENDPOINT, ITEMS_PATH, {**query, "tradable": "0"})
        min_prices, skipped = skinport_body.min_prices(items, self.currency)
        history = self._get(SALES_HISTORY_ENDPOINT, SALES_HISTORY_PATH, query)
        volumes = skinport_body.weekly_volumes(history, self.currency)
        prices = {
            title: MarketPrice(cents, volumes.get(title)) for title, cents in min_prices.items()
        }
        return PriceList(MARKET, self.currency, fetched_at, prices, skipped)

    def _get(self, endpoint: str, path: str, params: Mapping[str, str]) -> object:
        """The decoded answer of one GET, through the breaker and the budget."""
        what = skinport_body.ITEMS if endpoint == ITEMS_ENDPOINT else skinport_body.SALES_HISTORY
        request = self._client.build_request(
            "GET", path, params=params, headers={"Accept-Encoding": ACCEPT_ENCODING}
        )
        if self.breaker is not None:
            self.breaker.before_request()
        if self.budget is not None:
            self.budget.acquire(self._drain_requested)
        try:
            response = self._client.send(request, stream=True)
            try:
                answer = response_body.read(response, BODY_MAX_BYTES, ACCEPT_ENCODING)
            finally:
                response.close()
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            observe.market_request(MARKET, endpoint, type(exc).__name__)
            cause = f"Skinport request failed: {exc!r}"
            self._judge_outage(cause)
            raise RetryableMarketError(cause) from exc
        except httpx.TransportError as exc:
            # Proxy and local protocol errors, unsupported schemes: configuration, not weather.
            raise PermanentMarketError(f"Skinport request could not be made: {exc!r}") from exc
        status = response.status_code
        observe.market_request(MARKET, endpoint, status)
        if status == 429:
            # Our pace, not Skinport's health: the breaker is not told.
            raise self._paused(response.headers, answer)
        if status >= 500:
            cause = f"Skinport answered {status}: {skinport_body.error_text(answer.data)}"
            self._judge_outage(cause)
            raise RetryableMarketError(
                cause, retry_after_seconds=retry_after_from_headers(response.headers)
            )
        if self.breaker is not None:
            self.breaker.record_success()
        if not 200 <= status < 300:
            text = skinport_body.error_text(answer.data)
            raise PermanentMarketError(f"{what}: Skinport answered {status}: {text}")
        if answer.cut_short is not None:
            raise RetryableMarketError(f"{what}: response body: {answer.cut_short}")
        return skinport_body.decoded(answer.data, what)

    def _paused(self, headers: httpx.Headers, answer: response_body.Body) -> RetryableMarketError:
        """Over Skinport's limit, the whole fleet is: its budget waits Retry-After (one
        budget window without one), capped so a broken header cannot park the fleet."""
        asked_seconds = retry_after_from_headers(headers)
        if asked_seconds is None and self.budget is not None:
            asked_seconds = self.budget.window_seconds
        wait_seconds = (
            None if asked_seconds is None else min(asked_seconds, self._max_pause_seconds)
        )
        if self.budget is not None and wait_seconds is not None:
            self.budget.pause(wait_seconds)
        return RetryableMarketError(
            f"Skinport answered 429: {skinport_body.error_text(answer.data)}",
            retry_after_seconds=wait_seconds,
        )

    def _judge_outage(self, cause: str) -> None:
        """Count a failure; once the breaker is open, this fetch waits with the fleet
        (MarketUnavailable) instead of spending a retry."""
        if self.breaker is not None and self.breaker.record_failure(cause):
            raise MarketUnavailable(f"market unavailable: {cause}")


def skinport_price_list(
    settings: Settings, game: str, drain_requested: Callable[[], bool] = lambda: False
) -> SkinportPriceList:
    """Skinport's list of `game` as the fleet reads it: this process's keep-alive client, the
    fleet's budget and Skinport's breaker, both in the broker's Redis."""
    if game not in APP_IDS:
        raise InvalidInput(f"game: Skinport lists none of {game!r}; one of {', '.join(APP_IDS)}")
    budget = process_clients.request_budget(
        settings.broker_url,
        f"{settings.skinport_url}#skinport",
        settings.skinport_requests_per_window / settings.skinport_window_seconds,
        settings.sentinel_master,
    )
    breaker = CircuitBreaker(
        broker_redis.shared(settings.broker_url, settings.sentinel_master),
        settings.skinport_url,
        # Open by a page's last retry at the latest, so a page waits out an outage instead
        # of failing for it (invariant 11), as DMarket's breaker does.
        min(settings.skinport_breaker_failures, settings.max_retries + 1),
        settings.skinport_breaker_cooldown_seconds,
    )
    return SkinportPriceList(
        process_clients.http_client(settings.skinport_url, settings.http_timeout_seconds),
        app_id=APP_IDS[game],
        currency=settings.skinport_currency,
        budget=budget,
        breaker=breaker,
        drain_requested=drain_requested,
        max_pause_seconds=settings.retry_backoff_max_seconds,
    )
