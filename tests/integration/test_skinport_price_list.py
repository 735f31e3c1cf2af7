"""Skinport's price list read from the loopback Skinport (worker.testing.skinport_server),
its budget and breaker in a real Redis: Brotli asked for on every request, prices exact in
cents, bad prices skipped and counted, broken answers retryable and never half a list,
Skinport's own breaker opening on its outages, a 429 pausing the fleet, and the budget
keeping under Skinport's 8 requests per 5 minutes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from worker import observe
from worker.domain.price_list import MarketPrice
from worker.errors import InvalidInput, PermanentMarketError, RetryableMarketError
from worker.markets.fleet import process_clients
from worker.markets.fleet.breaker import CircuitBreaker, MarketUnavailable, is_open
from worker.markets.fleet.budget import RequestBudget
from worker.markets.second_market.skinport import SkinportPriceList, skinport_price_list
from worker.settings import Settings, get_settings
from worker.testing.skinport_server import FakeSkinport, FakeSkinportItem

ITEMS = [
    FakeSkinportItem("AK-47 | Redline (Field-Tested)", 12.34, 17),
    FakeSkinportItem("AWP | Asiimov (Field-Tested)", 50.1, None),
]
BREAKER_FAILURES = 3


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as connection:
        yield connection


def price_list(
    fake: FakeSkinport,
    client: redis.Redis,
    *,
    requests_per_second: float = 100.0,
    timeout_seconds: float = 5.0,
    max_pause_seconds: float = 60.0,
) -> SkinportPriceList:
    """Skinport's list as the fleet reads it, against `fake`, its budget and breaker keyed
    by the fake's URL as the factory keys them by Skinport's."""
    return SkinportPriceList(
        httpx.Client(base_url=fake.url, timeout=timeout_seconds),
        app_id=730,
        budget=RequestBudget(client, f"{fake.url}#skinport", requests_per_second),
        breaker=CircuitBreaker(client, fake.url, BREAKER_FAILURES, 60.0),
        max_pause_seconds=max_pause_seconds,
    )


def test_every_request_asks_for_brotli_and_the_game_in_usd(client: redis.Redis) -> None:
    with FakeSkinport(ITEMS) as fake:
        listed = price_list(fake, client).fetch()
    assert dict(listed.prices) == {
        "AK-47 | Redline (Field-Tested)": MarketPrice(1234, 17),
        "AWP | Asiimov (Field-Tested)": MarketPrice(5010, None),
    }
    assert [request.path for request in fake.requests] == ["/v1/items", "/v1/sales/history"]
    assert all(request.headers["accept-encoding"] == "br" for request in fake.requests)
    assert fake.count(406) == 0
    (items,) = fake.requests_to("/v1/items")
    assert items.query == {"app_id": "730", "currency": "USD", "tradable": "0"}
    (history,) = fake.requests_to("/v1/sales/history")
    assert history.query == {"app_id": "730", "currency": "USD"}


def test_each_request_is_counted_by_market_endpoint_and_status(client: redis.Redis) -> None:
    observe.drain()
    with FakeSkinport(ITEMS) as fake:
        price_list(fake, client).fetch()
    counts = observe.drain().counts

    def counted(endpoint: str) -> float:
        labels = (("market", "skinport"), ("endpoint", endpoint), ("code", "200"))
        return counts.get((observe.MARKET_REQUESTS, labels), 0)

    assert (counted("items"), counted("sales_history")) == (1, 1)


@pytest.mark.parametrize(
    ("price", "cents"),
    [(0.1 + 0.2, 30), (19.99, 1999), (4.35, 435), (1.15, 115), (0.07, 7), (1234.57, 123457)],
)
def test_a_price_is_exact_in_cents(client: redis.Redis, price: float, cents: int) -> None:
    # Given a price whose float times 100 is not a whole number (4.35 * 100 = 434.99...)
    with FakeSkinport([FakeSkinportItem("A", price, 1)]) as fake:
        listed = price_list(fake, client).fetch()
    # Then it is read from its decimal text, exactly
    assert listed.prices["A"] == MarketPrice(cents, 1)


def test_items_priced_below_zero_or_not_as_numbers_are_skipped_and_counted(
    client: redis.Redis,
) -> None:
    # Given items priced -1, "abc", true and 1e999 (served as Infinity) beside good ones
    bad = [-1, "abc", True, 1e999, float("nan")]
    items = [FakeSkinportItem(f"bad {n}", price, 1) for n, price in enumerate(bad)]
    with FakeSkinport([*items, *ITEMS, FakeSkinportItem("none", None, 2)]) as fake:
        listed = price_list(fake, client).fetch()
    # Then only the good ones and the one with nothing listed are in the list
    assert sorted(listed.prices) == sorted([item.market_hash_name for item in ITEMS] + ["none"])
    assert listed.prices["none"] == MarketPrice(None, 2)
    assert listed.skipped == len(bad)


def test_a_title_listed_twice_keeps_its_lowest_price(client: redis.Redis) -> None:
    items = [FakeSkinportItem("A", 5.0, 3), FakeSkinportItem("A", 3.5, 3)]
    with FakeSkinport([*items, FakeSkinportItem("A", None, 3)]) as fake:
        listed = price_list(fake, client).fetch()
    assert listed.prices == {"A": MarketPrice(350, 3)}


@pytest.mark.parametrize(
    ("failure", "path", "message"),
    [
        ("wrong_shape", "/v1/items", "skinport items: the answer: expected a list, got {"),
        ("wrong_shape", "/v1/sales/history", "skinport sales history: the answer: expected a"),
        ("not_json", "/v1/items", "skinport items: not valid JSON"),
        ("bad_brotli", "/v1/sales/history", "skinport sales history: response body: not valid br"),
    ],
)
def test_a_broken_answer_is_retryable_naming_it_and_nothing_is_returned(
    client: redis.Redis, failure: str, path: str, message: str
) -> None:
    with FakeSkinport(ITEMS) as fake:
        source = price_list(fake, client)
        fake.fail_next(1, failure, path=path)  # type: ignore[arg-type]
        with pytest.raises(RetryableMarketError) as raised:
            source.fetch()
        assert message in str(raised.value)
        # And the next fetch is whole
        assert len(source.fetch().prices) == len(ITEMS)


@pytest.mark.parametrize(("volume", "shown"), [(-3, "-3"), (2.5, "2.5"), (float("inf"), "inf")])
def test_a_history_volume_not_a_non_negative_integer_fails_the_fetch_naming_its_path(
    client: redis.Redis, volume: object, shown: str
) -> None:
    items = [*ITEMS, FakeSkinportItem("odd", 1.0, volume)]  # type: ignore[arg-type]
    with FakeSkinport(items) as fake, pytest.raises(RetryableMarketError) as raised:
        price_list(fake, client).fetch()
    assert str(raised.value) == (
        "skinport sales history: [1].last_7_days.volume: "
        f"expected a non-negative integer, got {shown}"
    )


def test_a_request_skinport_refuses_is_permanent_naming_its_status_and_message(
    client: redis.Redis,
) -> None:
    with FakeSkinport(ITEMS) as fake:
        source = SkinportPriceList(httpx.Client(base_url=fake.url), app_id=999)
        with pytest.raises(PermanentMarketError) as raised:
            source.fetch()
    assert str(raised.value) == (
        "skinport items: Skinport answered 400: invalid_app_id: app_id '999' is not supported"
    )


def test_a_currency_other_than_usd_is_refused_naming_it(http: httpx.Client) -> None:
    with pytest.raises(InvalidInput, match=r"^currency must be one of USD, got 'EUR'$"):
        SkinportPriceList(http, app_id=730, currency="EUR")


def test_server_errors_open_skinports_breaker_and_then_nothing_is_sent(
    client: redis.Redis,
) -> None:
    # Given Skinport answering 500s
    with FakeSkinport(ITEMS) as fake:
        source = price_list(fake, client)
        fake.fail_next(BREAKER_FAILURES, 500)
        # When it is asked until the breaker's count: each failure is retryable, the last
        # one opens the breaker and waits with the fleet
        for _ in range(BREAKER_FAILURES - 1):
            with pytest.raises(RetryableMarketError, match="Skinport answered 500") as raised:
                source.fetch()
            assert not isinstance(raised.value, MarketUnavailable)
        with pytest.raises(MarketUnavailable):
            source.fetch()
        sent = len(fake.requests)
        # Then the breaker keyed by Skinport's URL is open, and the next fetch sends nothing
        assert is_open(client, fake.url)
        with pytest.raises(MarketUnavailable):
            source.fetch()
        assert len(fake.requests) == sent == BREAKER_FAILURES


def test_timeouts_are_retryable_and_count_against_skinports_breaker(client: redis.Redis) -> None:
    # Given Skinport holding its answers past the client's timeout
    with FakeSkinport(ITEMS) as fake:
        source = price_list(fake, client, timeout_seconds=0.2)
        fake.fail_next(BREAKER_FAILURES, "hang", hang_seconds=5.0)
        # When it is asked until the breaker's count, Then each is a retryable timeout
        for _ in range(BREAKER_FAILURES - 1):
            with pytest.raises(RetryableMarketError, match="Skinport request failed: ReadTimeout"):
                source.fetch()
        # And the last opens the breaker
        with pytest.raises(MarketUnavailable, match="Skinport request failed: ReadTimeout"):
            source.fetch()
        assert is_open(client, fake.url)


def test_a_429_pauses_the_fleets_budget_for_its_retry_after_capped(client: redis.Redis) -> None:
    # Given a Skinport allowing 2 requests per 300 s, both spent by one fetch
    with FakeSkinport(ITEMS, requests_per_window=2, window_seconds=300.0) as fake:
        source = price_list(fake, client, max_pause_seconds=30.0)
        source.fetch()
        # When the list is fetched again
        with pytest.raises(RetryableMarketError, match="Skinport answered 429") as raised:
            source.fetch()
    # Then it waits out Skinport's Retry-After (300 s), capped at 30 s, and so does the fleet
    assert raised.value.retry_after_seconds == 30.0
    assert source.budget is not None
    assert 0 < source.budget.try_acquire() <= 30.0
    # And Skinport's health is not in doubt
    assert not is_open(client, fake.url)


def test_the_factory_reads_skinport_at_8_requests_per_5_minutes_with_its_own_breaker(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the settings pointing Skinport at the loopback one
    with FakeSkinport(ITEMS) as fake:
        monkeypatch.setenv("CELERY_BROKER_URL", redis_url)
        monkeypatch.setenv("MARKETSCAN_SKINPORT_URL", fake.url)
        get_settings.cache_clear()
        process_clients.close_all()
        try:
            settings: Settings = get_settings()
            source = skinport_price_list(settings, "cs2")
            # When the list is fetched through the fleet's client, budget and breaker
            listed = source.fetch()
        finally:
            process_clients.close_all()
            get_settings.cache_clear()
    assert len(listed.prices) == len(ITEMS)
    # Then the budget is 2 per 75 s and its margin: any 300 s lie in four such windows,
    # which hold 8 requests at most
    assert source.budget is not None and source.breaker is not None
    assert (source.budget.limit, source.budget.window_seconds) == (2, 75.05)
    assert 4 * source.budget.window_seconds > 300 and 4 * source.budget.limit == 8
    # And the breaker is Skinport's, keyed by its URL, not DMarket's
    assert source.breaker.market == fake.url != settings.dmarket_url


def test_an_unknown_game_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInput, match=r"^game: Skinport lists none of 'chess'"):
        skinport_price_list(Settings.from_env({}), "chess")


def test_fetches_in_a_row_within_the_budget_never_meet_a_429(client: redis.Redis) -> None:
    # Given a Skinport allowing 8 requests per 4 s, and the budget Skinport's 8 per 300 s
    # would be at that scale: 8/4 per second, 2 per 1.05 s, four of which cover 4 s
    window_seconds = 4.0
    with FakeSkinport(ITEMS, requests_per_window=8, window_seconds=window_seconds) as fake:
        source = price_list(fake, client, requests_per_second=8 / window_seconds)
        assert source.budget is not None
        assert 4 * source.budget.window_seconds > window_seconds
        # When the list is fetched 5 times in a row (10 requests)
        for _ in range(5):
            source.fetch()
    # Then Skinport never refused one
    assert fake.count(429) == 0
    assert len(fake.requests) == 10
    defaults = Settings()
    assert (defaults.skinport_requests_per_window, defaults.skinport_window_seconds) == (8, 300.0)
