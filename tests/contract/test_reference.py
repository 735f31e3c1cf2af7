"""One behaviour suite for every reference source (worker.markets.references.source): the
best bid and the last sales, against the loopback DMarket with the fleet's cache in a real
Redis, Skinport (a second market) against the loopback Skinport with the fleet's copy of its
list in a real Redis, and the memory stub shipped in the package.

Each case says how the market prices titles and how to break its next answer; the suite
says what every source must do with them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import redis

from tests.fakes.dmarket_server import FakeDMarket, ScriptedReply, dmarket_item
from worker import redis_keys
from worker.domain.listing import Item
from worker.domain.reference import BEST_BID, SKINPORT, Reference
from worker.errors import RetryableMarketError
from worker.markets.dmarket.transport import DMarketTransport
from worker.markets.fleet import process_clients
from worker.markets.references.best_bid import BestBidReference
from worker.markets.references.cache import ReferenceCache
from worker.markets.references.last_sales import LastSalesReference
from worker.markets.references.second_market import SecondMarketReference
from worker.markets.references.source import ReferenceSource
from worker.markets.second_market.cache import SharedPriceList
from worker.markets.second_market.skinport import SkinportPriceList
from worker.testing.memory_references import MemoryReferenceSource
from worker.testing.skinport_server import FakeSkinport, FakeSkinportItem

# title -> (reference cents, depth): what the market knows.
Prices = dict[str, tuple[int, int]]
TTL_SECONDS = 60.0
UNDERCUT_CENTS = 1


@dataclass
class SourceCase:
    """A source over a market that prices titles as told, and how to watch and break it."""

    source: Callable[[Prices], ReferenceSource]
    # How many lookup requests the market has answered so far.
    lookups: Callable[[], int]
    # The next lookup's answer is a body no source can read.
    break_next_answer: Callable[[], None]
    kind: str
    # The market prices these titles anew from the next lookup on.
    reprice: Callable[[Prices], None]
    # What a reference's depth is read from: its buy orders or sales behind a median, or a
    # second market's sales in 7 days.
    depth: Callable[[Reference], int | None] = lambda reference: reference.order_count
    # A second market's reference is as fresh as the fleet's read of its whole list: a
    # refresh reads the list again only once its life has lapsed (`lapse` moves past it).
    lapse: Callable[[], None] | None = None


def _listed(prices: Prices) -> list[dict[str, object]]:
    return [dmarket_item(f"id-{n}", title, 100) for n, title in enumerate(prices)]


def _sales_with_median(cents: int, count: int) -> list[int]:
    """`count` sales (odd) whose median is `cents`, newest first and not in order."""
    spread = [cents + 10 * ((-1) ** n) * ((n + 1) // 2) for n in range(count)]
    return list(reversed(spread))


def dmarket_case(stack: ExitStack, redis_url: str, kind: str) -> SourceCase:
    client = redis.Redis.from_url(redis_url)
    stack.callback(client.close)
    for key in client.scan_iter(f"{redis_keys.REFERENCE_PREFIX}*"):
        client.delete(key)
    servers: list[FakeDMarket] = []
    path = "/marketplace-api/v1/aggregated-prices" if kind == BEST_BID else "/trade-aggregator"

    def source(prices: Prices) -> ReferenceSource:
        if kind == BEST_BID:
            fake = FakeDMarket(_listed(prices), best_bids=prices)
        else:
            sales = {title: _sales_with_median(*price) for title, price in prices.items()}
            fake = FakeDMarket(_listed(prices), sales=sales)
        servers.append(stack.enter_context(fake))
        transport = DMarketTransport(process_clients.new_http_client(fake.url, 5.0))
        stack.callback(transport.client.close)
        cache = ReferenceCache(client, kind, "a8db", TTL_SECONDS)
        maker = BestBidReference if kind == BEST_BID else LastSalesReference
        return maker(transport, "a8db", cache)

    def lookups() -> int:
        return sum(1 for r in servers[-1].requests if r.path.startswith(path))

    def break_next_answer() -> None:
        fake = servers[-1]
        fake.script(len(fake.requests), ScriptedReply(body=b'{"aggregatedPrices": [{"ti'))

    def reprice(prices: Prices) -> None:
        if kind == BEST_BID:
            servers[-1].set_best_bids(prices)
        else:
            servers[-1].set_sales(
                {title: _sales_with_median(*price) for title, price in prices.items()}
            )

    return SourceCase(source, lookups, break_next_answer, kind, reprice)


def skinport_case(stack: ExitStack, redis_url: str) -> SourceCase:
    client = redis.Redis.from_url(redis_url)
    stack.callback(client.close)
    for key in client.scan_iter(f"{redis_keys.PRICE_LIST_PREFIX}*"):
        client.delete(key)
    servers: list[FakeSkinport] = []
    clock = [time.time()]
    priced: Prices = {}

    def listed(prices: Prices) -> list[FakeSkinportItem]:
        # Skinport's lowest listing, in dollars, one undercut above the reference.
        return [
            FakeSkinportItem(title, (cents + UNDERCUT_CENTS) / 100, volume_7d=depth)
            for title, (cents, depth) in prices.items()
        ]

    def reprice(prices: Prices) -> None:
        priced.update(prices)
        servers[-1].set_items(listed(priced))

    def source(prices: Prices) -> ReferenceSource:
        priced.clear()
        priced.update(prices)
        fake = stack.enter_context(FakeSkinport(listed(prices)))
        servers.append(fake)
        http = process_clients.new_http_client(fake.url, 5.0)
        stack.callback(http.close)
        shared = SharedPriceList(client, SKINPORT, f"730:USD:{len(servers)}", TTL_SECONDS,
                                 clock=lambda: clock[0])  # fmt: skip
        return SecondMarketReference(
            SKINPORT, shared, SkinportPriceList(http, app_id=730, clock=lambda: clock[0]),
            UNDERCUT_CENTS,
        )  # fmt: skip

    def lapse() -> None:
        clock[0] += TTL_SECONDS + 1

    return SourceCase(
        source,
        lambda: len(servers[-1].requests_to("/v1/items")),
        lambda: servers[-1].fail_next(1, "not_json", path="/v1/items"),
        SKINPORT,
        reprice,
        depth=lambda reference: reference.sales_7d,
        lapse=lapse,
    )


def memory_case() -> SourceCase:
    made: list[MemoryReferenceSource] = []

    def source(prices: Prices) -> ReferenceSource:
        made.append(MemoryReferenceSource(prices))
        return made[-1]

    def reprice(prices: Prices) -> None:
        made[-1].prices.update(prices)

    return SourceCase(
        source, lambda: len(made[-1].lookups), lambda: made[-1].fail_next(), BEST_BID, reprice
    )


@pytest.fixture(params=["best_bid", "last_sales", "skinport", "memory"])
def case(request: pytest.FixtureRequest) -> Iterator[SourceCase]:
    if request.param == "memory":
        yield memory_case()
        return
    redis_url: str = request.getfixturevalue("redis_url")
    with ExitStack() as stack:
        if request.param == SKINPORT:
            yield skinport_case(stack, redis_url)
        else:
            yield dmarket_case(stack, redis_url, request.param)


def items(*titles: str) -> list[Item]:
    return [Item(f"listing-{n}", title, 100, None) for n, title in enumerate(titles)]


PRICES: Prices = {"AK-47 | Redline (FT)": (1234, 3), "AWP | Asiimov (FT)": (5010, 5)}


def test_a_priced_title_gets_its_reference_with_kind_depth_and_fetch_time(
    case: SourceCase,
) -> None:
    before = datetime.now(UTC)
    (reference,) = case.source(PRICES).references(items("AK-47 | Redline (FT)"))
    assert reference is not None
    assert (reference.kind, reference.price_cents, case.depth(reference)) == (case.kind, 1234, 3)
    assert before - timedelta(seconds=1) <= reference.fetched_at <= datetime.now(UTC)


def test_a_title_the_market_has_no_price_for_has_no_reference(case: SourceCase) -> None:
    references = case.source(PRICES).references(items("Glock-18 | Fade (FN)"))
    assert references == [None]


def test_references_follow_the_listings_and_each_title_is_asked_for_once(
    case: SourceCase,
) -> None:
    source = case.source(PRICES)
    listed = items("AWP | Asiimov (FT)", "AK-47 | Redline (FT)", "AWP | Asiimov (FT)", "Nope")
    found = source.references(listed)
    assert [None if ref is None else ref.price_cents for ref in found] == [5010, 1234, 5010, None]
    asked = case.lookups()
    # When a later page lists the same titles, Then nothing is asked again (within the TTL)
    again = source.references(items("AK-47 | Redline (FT)", "Nope", "AWP | Asiimov (FT)"))
    assert [None if ref is None else ref.price_cents for ref in again] == [1234, None, 5010]
    assert case.lookups() == asked


def test_an_unreadable_answer_is_retryable_and_the_retry_gets_the_reference(
    case: SourceCase,
) -> None:
    source = case.source(PRICES)
    case.break_next_answer()
    with pytest.raises(RetryableMarketError):
        source.references(items("AK-47 | Redline (FT)"))
    (reference,) = source.references(items("AK-47 | Redline (FT)"))
    assert reference is not None and reference.price_cents == 1234


def test_an_empty_page_asks_nothing(case: SourceCase) -> None:
    source = case.source(PRICES)
    assert source.references([]) == []
    assert case.lookups() == 0


def test_refresh_asks_anew_whatever_is_cached_and_later_pages_get_the_new_reference(
    case: SourceCase,
) -> None:
    # Given a title looked up once, then priced anew by the market
    source = case.source(PRICES)
    listed = items("AK-47 | Redline (FT)", "AWP | Asiimov (FT)")
    assert [ref and ref.price_cents for ref in source.references(listed)] == [1234, 5010]
    case.reprice({"AK-47 | Redline (FT)": (1500, 7)})
    assert [ref and ref.price_cents for ref in source.references(listed)] == [1234, 5010]
    asked = case.lookups()
    if case.lapse is not None:
        # (A second market: within the list's life a refresh reads the fleet's copy, and
        # asks the market nothing; the life lapses, as it has once a reference is stale.)
        assert [ref and ref.price_cents for ref in source.refresh(listed)] == [1234, 5010]
        assert case.lookups() == asked
        case.lapse()
    # When the page's references are refreshed
    refreshed = source.refresh(listed)
    # Then the market is asked again, and answers the new price and depth
    assert case.lookups() > asked
    assert [ref and (ref.price_cents, case.depth(ref)) for ref in refreshed] == [
        (1500, 7),
        (5010, 5),
    ]
    # And a later page is judged against the refreshed reference, without asking again
    asked = case.lookups()
    assert [ref and ref.price_cents for ref in source.references(listed)] == [1500, 5010]
    assert case.lookups() == asked


def test_refresh_of_an_empty_page_asks_nothing(case: SourceCase) -> None:
    source = case.source(PRICES)
    assert source.refresh([]) == []
    assert case.lookups() == 0


def test_a_failed_refresh_is_retryable_and_leaves_the_cached_reference(
    case: SourceCase,
) -> None:
    source = case.source(PRICES)
    source.references(items("AK-47 | Redline (FT)"))
    if case.lapse is not None:
        case.lapse()  # a second market's refresh asks only once the list's life lapsed
    case.break_next_answer()
    with pytest.raises(RetryableMarketError):
        source.refresh(items("AK-47 | Redline (FT)"))
    (reference,) = source.references(items("AK-47 | Redline (FT)"))
    assert reference is not None and reference.price_cents == 1234
