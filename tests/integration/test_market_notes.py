"""What markets note for the metrics: each completed request with its status, each wait
for the fleet's budget; against the loopback DMarket and the real Redis budget."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.dmarket_server import FakeDMarket, ScriptedReply, dmarket_item
from worker import observe
from worker.domain.scan_params import ScanParams
from worker.errors import RetryableMarketError
from worker.markets.dmarket.market import DMarketMarket
from worker.markets.simulated import SimulatedMarket, SimulatedOptions
from worker.settings import Settings

ITEMS = [dmarket_item(f"dm-{n:03d}", f"AWP | Asiimov #{n}", 500 + n, 600 + n) for n in range(10)]
REQUESTS = observe.MARKET_REQUESTS


@pytest.fixture(autouse=True)
def _fresh_notes() -> Iterator[None]:
    observe.drain()
    yield
    observe.drain()


def _requests(notes: observe.Notes, market: str, endpoint: str) -> dict[str, float]:
    return {
        dict(labels)["code"]: amount
        for (name, labels), amount in notes.counts.items()
        if name == REQUESTS
        and dict(labels)["market"] == market
        and dict(labels)["endpoint"] == endpoint
    }


def test_a_dmarket_429_and_the_200_after_it_are_both_noted_with_their_budget_waits(
    redis_url: str,
) -> None:
    # Given DMarket answering 429 once, then pages
    with FakeDMarket(ITEMS) as fake:
        fake.script(0, ScriptedReply.rate_limited())
        settings = Settings(dmarket_url=fake.url, broker_url=redis_url,
                            dmarket_requests_per_second=50.0)  # fmt: skip
        params = ScanParams(game="csgo", market="dmarket", page_size=5)
        with DMarketMarket.from_params(params, settings) as market:
            # When a page is fetched, refused, and fetched again
            with pytest.raises(RetryableMarketError):
                market.fetch_page(None, 5)
            market.fetch_page(None, 5)
    # Then each request is noted once with its status, and each took the budget
    notes = observe.drain()
    assert _requests(notes, "dmarket", "market_items") == {"429": 1, "200": 1}
    waits = [d for d in notes.durations if d[0] == observe.MARKET_BUDGET_WAIT]
    assert len(waits) == 2


def test_an_unreachable_dmarket_is_noted_by_its_error_class(redis_url: str) -> None:
    with FakeDMarket(ITEMS) as fake:
        url = fake.url
    # Given nothing listens at the URL any more
    settings = Settings(dmarket_url=url, broker_url=redis_url, dmarket_requests_per_second=50.0,
                        http_timeout_seconds=2.0)  # fmt: skip
    params = ScanParams(game="csgo", market="dmarket")
    with DMarketMarket.from_params(params, settings) as market, pytest.raises(RetryableMarketError):
        market.fetch_page(None, 5)
    assert _requests(observe.drain(), "dmarket", "market_items") == {"ConnectError": 1}


def test_the_simulated_market_notes_its_pages() -> None:
    market = SimulatedMarket(SimulatedOptions.from_json({"items": 250}))
    cursor = None
    for _ in range(3):
        cursor = market.fetch_page(cursor, 100).next_cursor
    assert _requests(observe.drain(), "simulated", "page") == {"200": 3}
