"""DMarket's public item listing as a `MarketSource`."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

from worker import observe
from worker.errors import InvalidInput, PermanentMarketError, RetryableMarketError
from worker.markets import dmarket_auth, process_pool
from worker.markets.base import GAME_IDS, Item, Page, check_page_limit
from worker.markets.dmarket_auth import RequestSigner
from worker.markets.dmarket_page import parse_page
from worker.markets.rate_limit import RequestBudget

if TYPE_CHECKING:
    from worker.domain.scan_params import ScanParams
    from worker.settings import Settings

ITEMS_PATH = "/exchange/v1/market/items"
CURRENCY = "USD"
ORDER_DIRECTIONS = ("asc", "desc")
# What a scan's market_options may say to DMarket; everything else is refused by name.
MARKET_OPTIONS = ("order_by", "order_dir")
# Enough of an error body to tell "bad gameId" from "blocked", short enough for a log line.
BODY_EXCERPT_CHARS = 200


class DMarketMarket:
    """Pages of one game's DMarket listing, fetched within the fleet's request budget."""

    def __init__(
        self,
        *,
        base_url: str,
        game: str,
        price_from_cents: int | None = None,
        price_to_cents: int | None = None,
        order_by: str | None = None,
        order_dir: str | None = None,
        timeout_seconds: float = 15.0,
        max_pause_seconds: float = 60.0,
        budget: RequestBudget | None = None,
        client: httpx.Client | None = None,
        signer: RequestSigner | None = None,
        drain_requested: Callable[[], bool] = lambda: False,
    ) -> None:
        """Validate the filters once, so a bad scan fails before its first request.

        `budget`: the fleet's request budget for this API (None: no client-side limit); a
        429 pauses it for the wait the server asked for, at most `max_pause_seconds`.
        `client`: a shared keep-alive client that `close` leaves open (None: one of its own).
        `signer`: sign every request with DMarket API keys (None: unsigned).
        `drain_requested`: stops a wait for the budget when the worker drains.
        """
        if not timeout_seconds > 0:
            raise InvalidInput(f"timeout_seconds: must be > 0, got {timeout_seconds!r}")
        self._filters = _filter_params(game, price_from_cents, price_to_cents, order_by, order_dir)
        self._budget = budget
        self._max_pause_seconds = max_pause_seconds
        self._signer = signer
        self._drain_requested = drain_requested
        self._owns_client = client is None
        self._client = client or process_pool.new_http_client(base_url, timeout_seconds)

    @classmethod
    def from_params(
        cls,
        params: ScanParams,
        settings: Settings,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> DMarketMarket:
        """The market a scan's params describe, at the configured URL, rate and timeout;
        a wait for the request budget ends when `should_stop` says so (a drain).

        The scan's price band goes to DMarket as priceFrom/priceTo: items outside it are
        dropped by the scan anyway, so asking for them would only spend requests.
        """
        options = params.market_options
        unknown = sorted(set(options) - set(MARKET_OPTIONS))
        if unknown:
            raise InvalidInput(
                f"unknown dmarket market option {unknown[0]!r}: allowed are "
                f"{', '.join(MARKET_OPTIONS)}"
            )
        for name in MARKET_OPTIONS:
            if name in options and not isinstance(options[name], str):
                raise InvalidInput(f"{name}: must be a string, got {options[name]!r}")
        low_cents, high_cents = params.price_band
        return cls(
            drain_requested=should_stop,
            base_url=settings.dmarket_url,
            game=params.game,
            price_from_cents=low_cents,
            price_to_cents=high_cents,
            order_by=options.get("order_by"),
            order_dir=options.get("order_dir"),
            timeout_seconds=settings.http_timeout_seconds,
            max_pause_seconds=settings.retry_backoff_max_seconds,
            # One budget per API for the whole fleet: keyed by URL in the broker's Redis.
            budget=process_pool.request_budget(
                settings.broker_url,
                settings.dmarket_url,
                settings.dmarket_requests_per_second,
                settings.sentinel_master,
            ),
            client=process_pool.http_client(settings.dmarket_url, settings.http_timeout_seconds),
            signer=dmarket_auth.signer_from(
                settings.dmarket_public_key, settings.dmarket_secret_key
            ),
        )

    def fetch_page(self, cursor: str | None, limit: int) -> Page:
        """The page at `cursor` (None: the first), with at most `limit` items."""
        check_page_limit(limit)
        params = {**self._filters, "limit": str(limit)}
        if cursor:
            params["cursor"] = cursor
        request = self._client.build_request("GET", ITEMS_PATH, params=params)
        if self._budget is not None:
            self._budget.acquire(self._drain_requested)
        if self._signer is not None:
            # Signed last, just before sending: DMarket refuses stale X-Sign-Date values.
            request.headers.update(self._signer.headers("GET", request.url.raw_path.decode()))
        try:
            response = self._client.send(request)
        except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            observe.market_request("dmarket", "market_items", type(exc).__name__)
            raise RetryableMarketError(f"DMarket request failed: {exc!r}") from exc
        except httpx.TransportError as exc:
            # Proxy and local protocol errors, unsupported schemes: configuration, not weather.
            raise PermanentMarketError(f"DMarket request could not be made: {exc!r}") from exc
        observe.market_request("dmarket", "market_items", response.status_code)
        if response.status_code == 429 and self._budget is not None:
            self._pause_fleet(response.headers)
        return _page_from(response)

    def _pause_fleet(self, headers: httpx.Headers) -> None:
        """Over DMarket's limit, the whole fleet is: pause every process, not just this one.

        Without a wait in the answer, one budget window lets the server's window clear;
        a huge one is capped as the page's own retry wait is, so a broken header cannot
        park the fleet for hours.
        """
        assert self._budget is not None
        asked_seconds = retry_after_from_headers(headers)
        if asked_seconds is None:
            asked_seconds = self._budget.window_seconds
        self._budget.pause(min(asked_seconds, self._max_pause_seconds))

    def inspect(self, item: Item) -> Item:
        """The item as listed: the listing already carries price and suggested price."""
        return item

    def close(self) -> None:
        """Close this market's own client; a shared one stays open for the next page."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> DMarketMarket:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _filter_params(
    game: str,
    price_from_cents: int | None,
    price_to_cents: int | None,
    order_by: str | None,
    order_dir: str | None,
) -> dict[str, str]:
    """The query parameters every request of one scan shares."""
    game_id = GAME_IDS.get(game.strip().lower())
    if game_id is None:
        allowed = ", ".join(sorted(GAME_IDS))
        raise InvalidInput(f"game: unknown {game!r}; allowed: {allowed}")
    params = {"gameId": game_id, "currency": CURRENCY}
    params.update(_price_params(price_from_cents, price_to_cents))
    if order_by is not None:
        if not order_by.strip():
            raise InvalidInput("order_by: must not be empty")
        params["orderBy"] = order_by.strip()
    if order_dir is not None:
        if order_dir.lower() not in ORDER_DIRECTIONS:
            raise InvalidInput(f"order_dir: must be asc or desc, got {order_dir!r}")
        params["orderDir"] = order_dir.lower()
    return params


def _price_params(price_from_cents: int | None, price_to_cents: int | None) -> dict[str, str]:
    for name, cents in (("price_from_cents", price_from_cents), ("price_to_cents", price_to_cents)):
        if cents is not None and cents < 0:
            raise InvalidInput(f"{name}: must be >= 0, got {cents}")
    if (
        price_from_cents is not None
        and price_to_cents is not None
        and (price_from_cents > price_to_cents)
    ):
        raise InvalidInput(
            f"price_from_cents: must be <= price_to_cents, "
            f"got {price_from_cents} > {price_to_cents}"
        )
    params = {}
    if price_from_cents is not None:
        params["priceFrom"] = str(price_from_cents)
    if price_to_cents is not None:
        params["priceTo"] = str(price_to_cents)
    return params


def _page_from(response: httpx.Response) -> Page:
    """The page in a successful response, or the market error a failed one means."""
    status = response.status_code
    if status == 429 or status >= 500:
        raise RetryableMarketError(
            f"DMarket answered {status}: {_excerpt(response)}",
            retry_after_seconds=retry_after_from_headers(response.headers),
        )
    if not 200 <= status < 300:
        raise PermanentMarketError(f"DMarket answered {status}: {_excerpt(response)}")
    try:
        payload = response.json()
    except ValueError as exc:
        raise PermanentMarketError(
            f"response body: not valid JSON ({exc}): {_excerpt(response)}"
        ) from exc
    return parse_page(payload)


def retry_after_from_headers(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """The wait a 429/5xx asked for: Retry-After (seconds or HTTP-date), else RateLimit-Reset.

    None when neither header is there or parses; the caller then backs off on its own.
    """
    retry_after = headers.get("Retry-After", "").strip()
    if retry_after:
        seconds = _non_negative_seconds(retry_after)
        if seconds is None:
            seconds = _seconds_until_http_date(retry_after, now or datetime.now(UTC))
        if seconds is not None:
            return seconds
    reset = headers.get("RateLimit-Reset", "").strip()
    return _non_negative_seconds(reset) if reset else None


def _non_negative_seconds(text: str) -> float | None:
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _seconds_until_http_date(text: str, now: datetime) -> float | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        # RFC 9110 dates are GMT; parsedate gives naive datetimes for "-0000".
        moment = moment.replace(tzinfo=UTC)
    # A date already past means "now", not a negative wait.
    return max(0.0, (moment - now).total_seconds())


def _excerpt(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    if len(text) > BODY_EXCERPT_CHARS:
        return text[:BODY_EXCERPT_CHARS] + "..."
    return text or "<empty body>"
