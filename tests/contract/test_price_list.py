"""One behaviour suite for every second market's price list (worker.markets.references.
price_list): Skinport against the loopback Skinport, its budget and breaker in a real Redis,
and the memory stub shipped in the package.

Each case says how the market prices titles (title -> (lowest listing in cents or None,
7-day sales or None)) and how to break its next fetch; the suite says what every source must
do with them.

Adding the next market is one line: write `<market>_case(stack, request) -> SourceCase`
beside `skinport_case` (or in its own module) and add it to CASES below; every test here
then runs over it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import pytest
import redis

from worker.domain.price_list import MarketPrice
from worker.errors import RetryableMarketError
from worker.markets.fleet.breaker import CircuitBreaker
from worker.markets.fleet.budget import RequestBudget
from worker.markets.second_market.skinport import SkinportPriceList
from worker.markets.second_market.source import PriceListSource
from worker.testing.memory_price_list import MemoryPriceList
from worker.testing.skinport_server import FakeSkinport, FakeSkinportItem

# title -> (lowest listing in cents or None: nothing listed, 7-day sales or None: no history)
Prices = dict[str, tuple[int | None, int | None]]


@dataclass
class SourceCase:
    """A source over a market that prices titles as told, and how to break its next fetch."""

    source: Callable[[Prices], PriceListSource]
    # The next fetch fails as the market can fail (a body of the wrong shape).
    break_next_fetch: Callable[[], None]
    market: str


def memory_case(stack: ExitStack, request: pytest.FixtureRequest) -> SourceCase:
    made: list[MemoryPriceList] = []

    def source(prices: Prices) -> PriceListSource:
        made.append(MemoryPriceList(prices))
        return made[-1]

    return SourceCase(source, lambda: made[-1].fail_next(), "memory")


def skinport_case(stack: ExitStack, request: pytest.FixtureRequest) -> SourceCase:
    redis_url: str = request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(redis_url)
    stack.callback(client.close)
    servers: list[FakeSkinport] = []

    def source(prices: Prices) -> PriceListSource:
        items = [
            FakeSkinportItem(title, None if cents is None else cents / 100, volume)
            for title, (cents, volume) in prices.items()
        ]
        fake = stack.enter_context(FakeSkinport(items))
        servers.append(fake)
        http = stack.enter_context(httpx.Client(base_url=fake.url, timeout=5.0))
        # The fleet's budget and breaker, in Redis, keyed by this fake's URL; a budget far
        # above the fake's 8 per 5 minutes, as the suite never sends more than 8.
        budget = RequestBudget(client, f"{fake.url}#skinport", 100)
        breaker = CircuitBreaker(client, fake.url, 3, 60.0)
        return SkinportPriceList(http, app_id=730, budget=budget, breaker=breaker)

    return SourceCase(source, lambda: servers[-1].fail_next(1, "wrong_shape"), "skinport")


# Every price-list source the suite holds to its rules: one line per market.
CASES: dict[str, Callable[[ExitStack, pytest.FixtureRequest], SourceCase]] = {
    "memory": memory_case,
    "skinport": skinport_case,
}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Iterator[SourceCase]:
    with ExitStack() as stack:
        yield CASES[request.param](stack, request)


PRICES: Prices = {
    "AK-47 | Redline (Field-Tested)": (1234, 17),
    "AWP | Asiimov (Field-Tested)": (5010, None),
    "Glock-18 | Fade (Factory New)": (None, 2),
    "Sticker | Crown (Foil)": (99_999_999, 0),
    "★ Karambit | Doppler (Factory New)": (1, 1),
}


def test_every_listed_title_has_its_lowest_price_in_cents_and_its_7_day_sales(
    case: SourceCase,
) -> None:
    # Given a market listing titles, one without history and one with nothing for sale
    source = case.source(PRICES)
    before = time.time()
    # When its list is fetched
    price_list = source.fetch()
    # Then every title is there with its lowest listing in cents and its 7-day sales
    assert dict(price_list.prices) == {
        title: MarketPrice(cents, volume) for title, (cents, volume) in PRICES.items()
    }
    assert price_list.skipped == 0
    assert before <= price_list.fetched_at <= time.time()


def test_a_title_with_nothing_listed_has_no_lowest_price(case: SourceCase) -> None:
    price_list = case.source({"Glock-18 | Fade (Factory New)": (None, None)}).fetch()
    assert price_list.prices["Glock-18 | Fade (Factory New)"].min_price_cents is None


def test_the_list_is_in_usd_and_named_by_its_market(case: SourceCase) -> None:
    source = case.source(PRICES)
    price_list = source.fetch()
    assert (price_list.market, price_list.currency) == (case.market, "USD")
    assert source.market == case.market


def test_an_empty_market_is_an_empty_list(case: SourceCase) -> None:
    price_list = case.source({}).fetch()
    assert (dict(price_list.prices), price_list.skipped) == ({}, 0)


def test_a_broken_fetch_is_retryable_and_the_next_fetch_is_whole(case: SourceCase) -> None:
    # Given a market whose next answer is broken
    source = case.source(PRICES)
    case.break_next_fetch()
    # When its list is fetched, Then the fetch fails, retryable, returning nothing
    with pytest.raises(RetryableMarketError):
        source.fetch()
    # And the next fetch has the whole list
    price_list = source.fetch()
    assert dict(price_list.prices) == {
        title: MarketPrice(cents, volume) for title, (cents, volume) in PRICES.items()
    }
