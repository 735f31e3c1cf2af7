"""DMarket's public item listing as a `MarketSource`: v2 offers, or the deprecated v1 listing.

Both speak through worker.markets.dmarket.transport (budget, signing, errors); they differ in
path, query and body, which `LISTING_APIS` says for each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING

import httpx

from worker import broker_redis
from worker.domain.price_list import currency_of
from worker.domain.reference import DMARKET_API_OPTION, dmarket_api_of
from worker.errors import InvalidInput
from worker.markets.base import GAME_IDS, Item, Page, check_page_limit
from worker.markets.dmarket import auth
from worker.markets.dmarket.auth import RequestSigner
from worker.markets.dmarket.transport import (
    AGGREGATED_PRICES,
    FEES,
    LAST_SALES,
    MARKET_ITEMS,
    DMarketTransport,
)
from worker.markets.dmarket.v1_items import parse_page
from worker.markets.dmarket.v2_offers import parse_offers
from worker.markets.fleet import process_clients
from worker.markets.fleet.breaker import CircuitBreaker
from worker.markets.fleet.budget import RequestBudget

if TYPE_CHECKING:
    from worker.domain.scan_params import ScanParams
    from worker.settings import Settings

ITEMS_PATH = "/exchange/v1/market/items"
OFFERS_PATH = "/marketplace-api/v2/offers"
CURRENCY = "USD"
ORDER_DIRECTIONS = ("asc", "desc")
# What a scan's market_options may say to DMarket; everything else is refused by name.
# `currency`: the scan's prices' currency, USD only (DMarket's prices are USD cents, and a
# second market's list is read in USD: worker.domain.price_list).
CURRENCY_OPTION = "currency"
MARKET_OPTIONS = ("order_by", "order_dir", DMARKET_API_OPTION, CURRENCY_OPTION)


@dataclass(frozen=True)
class ListingApi:
    """How one version of DMarket's listing is asked and read."""

    path: str
    parse: Callable[[object], Page]
    # v1 wants `currency=USD`; v2's prices are cents of USD and it takes no currency.
    currency: bool


LISTING_APIS = {
    "v2": ListingApi(OFFERS_PATH, parse_offers, currency=False),
    "v1": ListingApi(ITEMS_PATH, parse_page, currency=True),
}


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
        budgets: Mapping[str, RequestBudget | None] | None = None,
        client: httpx.Client | None = None,
        signer: RequestSigner | None = None,
        drain_requested: Callable[[], bool] = lambda: False,
        api: str = "v1",
        max_empty_pages: int = 3,
        breaker: CircuitBreaker | None = None,
        priority: bool = False,
    ) -> None:
        """Validate the filters once, so a bad scan fails before its first request.

        `budget`: the fleet's request budget for market items (None: no client-side limit);
        a 429 pauses it for the wait the server asked for, at most `max_pause_seconds`.
        `budgets`: a budget per endpoint class instead (worker.markets.dmarket.transport).
        `client`: a shared keep-alive client that `close` leaves open (None: one of its own).
        `signer`: sign every request with DMarket API keys (None: unsigned).
        `drain_requested`: stops a wait for the budget when the worker drains.
        `api`: "v2" (offers) or "v1" (the deprecated market items).
        `max_empty_pages`: empty pages in a row that still carry a cursor, walked on within
        one fetch, before the walk is ended with a note.
        `breaker`: the fleet's circuit breaker (None: each failure is the request's own).
        `priority`: the listing's requests take the budget's priority lane, waiting for at
        most one slot ahead of every full scan (a fresh watch's poll).
        """
        if not timeout_seconds > 0:
            raise InvalidInput(f"timeout_seconds: must be > 0, got {timeout_seconds!r}")
        if api not in LISTING_APIS:
            raise InvalidInput(f"api: must be one of {', '.join(LISTING_APIS)}, got {api!r}")
        if max_empty_pages < 1:
            raise InvalidInput(f"max_empty_pages: must be >= 1, got {max_empty_pages!r}")
        self._api = LISTING_APIS[api]
        self._max_empty_pages = max_empty_pages
        self._filters = _filter_params(game, price_from_cents, price_to_cents, order_by, order_dir)
        if not self._api.currency:
            del self._filters["currency"]
        self._owns_client = client is None
        self.transport = DMarketTransport(
            client or process_clients.new_http_client(base_url, timeout_seconds),
            budgets=budgets if budgets is not None else {MARKET_ITEMS: budget},
            signer=signer,
            max_pause_seconds=max_pause_seconds,
            drain_requested=drain_requested,
            breaker=breaker,
            priority=priority,
        )

    @classmethod
    def from_params(
        cls,
        params: ScanParams,
        settings: Settings,
        should_stop: Callable[[], bool] = lambda: False,
        breaker: CircuitBreaker | None = None,
        priority: bool = False,
        whole_listing: bool = False,
    ) -> DMarketMarket:
        """The market a scan's params describe, at the configured URL, rate and timeout;
        a wait for the request budget ends when `should_stop` says so (a drain);
        `priority`: its listing requests take the budget's priority lane.

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
        if CURRENCY_OPTION in options:
            currency_of(options[CURRENCY_OPTION], f"market option {CURRENCY_OPTION}")
        # `whole_listing`: no price filter (a fresh walk serves watches of every band).
        low_cents, high_cents = (None, None) if whole_listing else params.price_band
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
            budgets=dmarket_budgets(settings),
            client=process_clients.http_client(settings.dmarket_url, settings.http_timeout_seconds),
            signer=auth.signer_from(settings.dmarket_public_key, settings.dmarket_secret_key),
            # Rows stored before the API was frozen into them use the worker's.
            api=dmarket_api_of(options.get(DMARKET_API_OPTION, settings.dmarket_api)),
            max_empty_pages=settings.dmarket_max_empty_pages,
            breaker=breaker,
            priority=priority,
        )

    def fetch_page(self, cursor: str | None, limit: int) -> Page:
        """The page at `cursor` (None: the first), with at most `limit` items.

        A bad `limit` is refused here, before any request: DMarket would answer 400. Real
        answers hold quirks that could loop a scan for ever, spending the fleet's budget: a
        page with no listings but a cursor is walked on here, at most `max_empty_pages` in a
        row, and a cursor that comes back unchanged ends the walk. Either way the page says
        why it is the last (`end_note`).
        """
        check_page_limit(limit)
        asked, empty_pages = cursor, 0
        while True:
            page = self._fetch(asked, limit)
            if page.next_cursor is not None and page.next_cursor == asked:
                return replace(
                    page,
                    next_cursor=None,
                    end_note="walk ended: DMarket sent back the cursor it was asked for",
                )
            if page.items or page.unusable or page.next_cursor is None:
                return page
            empty_pages += 1
            if empty_pages >= self._max_empty_pages:
                return replace(
                    page,
                    next_cursor=None,
                    end_note=f"walk ended: DMarket sent {empty_pages} empty pages in a row "
                    "that still had a cursor",
                )
            asked = page.next_cursor

    def _fetch(self, cursor: str | None, limit: int) -> Page:
        params = {**self._filters, "limit": str(limit)}
        if cursor:
            params["cursor"] = cursor
        return self._api.parse(self.transport.send(MARKET_ITEMS, "GET", self._api.path, params))

    def inspect(self, item: Item) -> Item:
        """The item as listed: the listing already carries price and suggested price."""
        return item

    def close(self) -> None:
        """Close this market's own client; a shared one stays open for the next page."""
        if self._owns_client:
            self.transport.client.close()

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


def dmarket_budgets(settings: Settings) -> dict[str, RequestBudget | None]:
    """The fleet's budget of each endpoint class, kept in the broker's Redis.

    Market items keep the key they always had (the URL); the other classes are keyed
    beside it. Unsigned, last sales is one of DMarket's "other methods" and shares their
    budget; signed, it has its own. The customized fees have their own in either mode.
    """
    url, redis_url = settings.dmarket_url, settings.broker_url

    def budget(api: str, requests_per_second: float) -> RequestBudget:
        return process_clients.request_budget(
            redis_url, api, requests_per_second, settings.sentinel_master
        )

    items = budget(url, settings.dmarket_requests_per_second)
    other = budget(f"{url}#other", settings.dmarket_other_requests_per_second)
    signed = settings.dmarket_public_key is not None
    last_sales = (
        budget(f"{url}#last_sales", settings.dmarket_last_sales_requests_per_second)
        if signed
        else other
    )
    fees = budget(f"{url}#fees", settings.dmarket_fee_requests_per_second)
    return {MARKET_ITEMS: items, AGGREGATED_PRICES: other, LAST_SALES: last_sales, FEES: fees}


def fleet_breaker(settings: Settings) -> CircuitBreaker:
    """The circuit breaker every process shares for the configured DMarket.

    It opens by a page's last retry at the latest: a page fails after
    MARKETSCAN_MAX_RETRIES + 1 failures, and the failure that opens the breaker becomes a
    wait, so a scan alone on the API waits out an outage instead of failing (invariant 11).
    """
    return CircuitBreaker(
        broker_redis.shared(settings.broker_url, settings.sentinel_master),
        settings.dmarket_url,
        min(settings.dmarket_breaker_failures, settings.max_retries + 1),
        settings.dmarket_breaker_cooldown_seconds,
    )
