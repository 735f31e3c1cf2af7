"""The last-sales reference against the loopback DMarket and the fleet's cache in a real
Redis: dated sales spread over weeks with outliers, illiquid titles, a malformed date,
refresh past the cache, and entries cached before the sales history was kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from tests.fakes.dmarket_server import FakeDMarket, ScriptedReply
from worker import redis_keys
from worker.domain.listing import Item
from worker.domain.reference import BEST_BID, LAST_SALES, Reference
from worker.errors import RetryableMarketError
from worker.markets.dmarket.transport import DMarketTransport
from worker.markets.fleet import process_clients
from worker.markets.references.best_bid import BestBidReference
from worker.markets.references.cache import ReferenceCache
from worker.markets.references.last_sales import LastSalesReference

SALES_PATH = "/trade-aggregator/v1/last-sales"
NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
DAY = 86_400
NOW_UNIX = int(NOW.timestamp())
LIQUID = "AK-47 | Redline (FT)"
STALE = "AWP | Asiimov (BS)"
# Newest first: two sales this week, the rest over four weeks, one at a cent and one at
# ten times the price among them.
LIQUID_SALES = [
    (1010, NOW_UNIX - 1 * DAY),
    (1, NOW_UNIX - 2 * DAY),
    (990, NOW_UNIX - 8 * DAY),
    (10_000, NOW_UNIX - 9 * DAY),
    (1000, NOW_UNIX - 15 * DAY),
    (1020, NOW_UNIX - 22 * DAY),
    (980, NOW_UNIX - 29 * DAY),
]
# No sale in a month.
STALE_SALES = [(5000, NOW_UNIX - 33 * DAY), (5200, NOW_UNIX - 40 * DAY)]


def listed(*titles: str) -> list[Item]:
    return [Item(f"listing-{n}", title, 100, None) for n, title in enumerate(titles)]


@pytest.fixture
def cache_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def fake() -> Iterator[FakeDMarket]:
    with FakeDMarket(sales={LIQUID: LIQUID_SALES, STALE: STALE_SALES}) as server:
        yield server


@pytest.fixture
def transport(fake: FakeDMarket) -> Iterator[DMarketTransport]:
    made = DMarketTransport(process_clients.new_http_client(fake.url, 5.0))
    yield made
    made.client.close()


def last_sales(
    transport: DMarketTransport, client: redis.Redis, now: datetime = NOW
) -> LastSalesReference:
    cache = ReferenceCache(client, LAST_SALES, "a8db", 60.0)
    return LastSalesReference(transport, "a8db", cache, clock=lambda: now)


def test_dated_sales_give_the_median_without_outliers_and_how_recent_the_trade_is(
    fake: FakeDMarket, transport: DMarketTransport, cache_client: redis.Redis
) -> None:
    # When the title's reference is looked up
    (reference,) = last_sales(transport, cache_client).references(listed(LIQUID))
    # Then twenty sales were asked for
    (request,) = fake.requests_to(SALES_PATH)
    assert request.query == {"gameId": "a8db", "title": LIQUID, "limit": "20"}
    # And the cent and the 100-dollar sale are left out of the median and the count, but
    # both are trades of this week and last
    assert reference == Reference(
        LAST_SALES,
        1000,
        5,
        NOW,
        sales_7d=2,
        last_sale_at=NOW - timedelta(days=1),
    )


def test_a_title_unsold_for_a_month_has_no_sale_this_week_and_an_old_last_sale(
    transport: DMarketTransport, cache_client: redis.Redis
) -> None:
    (reference,) = last_sales(transport, cache_client).references(listed(STALE))
    assert reference is not None
    assert (reference.price_cents, reference.order_count) == (5100, 2)
    assert reference.sales_7d == 0
    assert reference.last_sale_at == NOW - timedelta(days=33)


def test_the_sales_history_survives_the_fleets_cache(
    fake: FakeDMarket, transport: DMarketTransport, cache_client: redis.Redis
) -> None:
    # Given one process looked the title up
    (first,) = last_sales(transport, cache_client).references(listed(LIQUID))
    # When another process (its own cache object, a later clock) reads it
    later = NOW + timedelta(hours=1)
    (cached,) = last_sales(transport, cache_client, later).references(listed(LIQUID))
    # Then it got the stored reference, history and all, without asking DMarket
    assert len(fake.requests_to(SALES_PATH)) == 1
    assert cached == first


def test_only_the_twenty_newest_sales_are_read(
    fake: FakeDMarket, transport: DMarketTransport, cache_client: redis.Redis
) -> None:
    # Given 25 sales a day apart, newest first, the five oldest at ten times the price
    sales = [(1000 if n < 20 else 10_000, NOW_UNIX - n * DAY) for n in range(25)]
    fake.set_sales({LIQUID: sales})
    (reference,) = last_sales(transport, cache_client).references(listed(LIQUID))
    assert reference is not None
    assert (reference.price_cents, reference.order_count, reference.sales_7d) == (1000, 20, 8)


def test_a_malformed_sale_date_is_retryable_naming_it_and_nothing_is_cached(
    fake: FakeDMarket, transport: DMarketTransport, cache_client: redis.Redis
) -> None:
    # Given DMarket's next answer dates its second sale in words
    body = {
        "sales": [{"price": "10.00", "date": "1782907200"}, {"price": "10.00", "date": "today"}]
    }
    fake.script(0, ScriptedReply(body=json.dumps(body).encode()))
    source = last_sales(transport, cache_client)
    # When the title is looked up, Then the lookup is retryable and names the date
    with pytest.raises(RetryableMarketError, match=r"sales\[1\]\.date: expected .* got 'today'"):
        source.references(listed(LIQUID))
    # And the retry asks again (nothing was cached) and gets the reference
    (reference,) = source.references(listed(LIQUID))
    assert reference is not None and reference.price_cents == 1000
    assert len(fake.requests_to(SALES_PATH)) == 2


def test_refresh_bypasses_the_cache_and_overwrites_it_for_the_fleet(
    fake: FakeDMarket, transport: DMarketTransport, cache_client: redis.Redis
) -> None:
    # Given a title cached, then sold again at a new price
    source = last_sales(transport, cache_client)
    source.references(listed(LIQUID))
    fake.set_sales({LIQUID: [(2000, NOW_UNIX - 60), *LIQUID_SALES]})
    (cached,) = source.references(listed(LIQUID))
    assert cached is not None and cached.price_cents == 1000
    assert len(fake.requests_to(SALES_PATH)) == 1
    # When the title is refreshed
    (refreshed,) = source.refresh(listed(LIQUID))
    # Then DMarket was asked again and the new sale is in (median of 6 kept: 1005)
    assert len(fake.requests_to(SALES_PATH)) == 2
    assert refreshed is not None
    assert (refreshed.price_cents, refreshed.order_count, refreshed.sales_7d) == (1005, 6, 3)
    assert refreshed.last_sale_at == NOW - timedelta(minutes=1)
    # And another process's lookup reads the refreshed entry without asking
    (seen,) = last_sales(transport, cache_client).references(listed(LIQUID))
    assert seen == refreshed
    assert len(fake.requests_to(SALES_PATH)) == 2


def test_an_entry_cached_before_the_sales_history_was_kept_still_reads(
    fake: FakeDMarket, transport: DMarketTransport, cache_client: redis.Redis
) -> None:
    # Given an entry stored by a worker of the old format: [cents, count, fetched_unix]
    key = f"{redis_keys.REFERENCE_PREFIX}{LAST_SALES}:a8db:{LIQUID}"
    cache_client.set(key, json.dumps([1234, 3, NOW.timestamp()]), px=60_000)
    # When a page lists the title
    (reference,) = last_sales(transport, cache_client).references(listed(LIQUID))
    # Then the entry is the reference, its history unknown, and DMarket is not asked
    assert reference == Reference(LAST_SALES, 1234, 3, NOW)
    assert (reference.sales_7d, reference.last_sale_at) == (None, None)
    assert fake.requests_to(SALES_PATH) == []


def test_a_title_with_one_buy_order_has_a_best_bid_one_order_deep(
    cache_client: redis.Redis,
) -> None:
    with FakeDMarket(best_bids={LIQUID: (900, 1)}) as server:
        made = DMarketTransport(process_clients.new_http_client(server.url, 5.0))
        try:
            cache = ReferenceCache(cache_client, BEST_BID, "a8db", 60.0)
            (reference,) = BestBidReference(made, "a8db", cache).references(listed(LIQUID))
        finally:
            made.client.close()
    assert reference is not None
    assert (reference.price_cents, reference.order_count) == (900, 1)
    assert (reference.sales_7d, reference.last_sale_at) == (None, None)


def test_sales_given_by_price_alone_are_made_now_and_a_minute_apart(
    cache_client: redis.Redis,
) -> None:
    # Given sales given without dates, and a source on the wall clock
    with FakeDMarket(sales={LIQUID: [1000, 1010, 990]}) as server:
        made = DMarketTransport(process_clients.new_http_client(server.url, 5.0))
        cache = ReferenceCache(cache_client, LAST_SALES, "a8db", 60.0)
        before = datetime.now(UTC).replace(microsecond=0)
        try:
            (reference,) = LastSalesReference(made, "a8db", cache).references(listed(LIQUID))
        finally:
            made.client.close()
    # Then all three were made this week, the newest when they were asked for
    assert reference is not None
    assert (reference.price_cents, reference.sales_7d) == (1000, 3)
    assert reference.last_sale_at is not None
    assert before <= reference.last_sale_at <= reference.fetched_at
