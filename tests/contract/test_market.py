"""One behaviour suite for every market (worker.markets.base.MarketSource): the simulated
market, and DMarket's client (v1 market items and v2 offers) against the loopback fake of
tests/fakes/dmarket_server.py.

Each case only says how to list N items, how to make its answers fail; the suite says
what every market must do with them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import pytest

from tests.fakes.dmarket_server import FakeDMarket, ScriptedReply, dmarket_item
from worker.errors import InvalidInput, PermanentMarketError, RetryableMarketError
from worker.markets.base import MAX_PAGE_SIZE, Item, MarketSource, Page
from worker.markets.dmarket.market import DMarketMarket
from worker.markets.simulated import SimulatedMarket, SimulatedOptions, catalog_item

SEED = 7
# The statuses a market may be refused with that are worth asking again.
RETRYABLE_STATUSES = ("429", "500", "502", "503")


@dataclass(frozen=True)
class MarketCase:
    """How one market lists `items` items, and how its answers are made to fail."""

    listed_ids: Callable[[int], list[str]]
    listing: Callable[[int], MarketSource]
    # A listing refused now and then with 429 or 5xx, each refusal answered on a retry.
    flaky_listing: Callable[[int], MarketSource]
    # A listing and the cursor whose answer it cannot read.
    unreadable_answer: Callable[[int], tuple[MarketSource, str | None]]


def simulated_case(stack: ExitStack) -> MarketCase:
    def listing(items: int, fail_rate: float = 0.0) -> MarketSource:
        options = SimulatedOptions(items=items, seed=SEED, fail_rate=fail_rate)
        market = SimulatedMarket(options)
        stack.callback(market.close)
        return market

    return MarketCase(
        listed_ids=lambda items: [catalog_item(SEED, index).item_id for index in range(items)],
        listing=listing,
        flaky_listing=lambda items: listing(items, fail_rate=0.5),
        # The simulated market's answers are its own cursors: a forged one cannot be read.
        unreadable_answer=lambda items: (listing(items), "forged-cursor"),
    )


def dmarket_case(stack: ExitStack, api: str) -> MarketCase:
    def listed(items: int) -> list[dict[str, object]]:
        return [
            dmarket_item(f"item-{n}", f"AK-47 | Redline #{n}", 100 + n, suggested_cents=150 + n)
            for n in range(items)
        ]

    def listing(items: int, scripted: dict[int, ScriptedReply] | None = None) -> MarketSource:
        server = stack.enter_context(FakeDMarket(listed(items), scripted=scripted))
        market = DMarketMarket(base_url=server.url, game="csgo", timeout_seconds=5.0, api=api)
        stack.callback(market.close)
        return market

    refusals = {
        0: ScriptedReply.rate_limited(retry_after="0"),
        2: ScriptedReply.error(500),
        4: ScriptedReply.error(502),
        6: ScriptedReply.error(503),
    }
    return MarketCase(
        listed_ids=lambda items: [f"item-{n}" for n in range(items)],
        listing=listing,
        flaky_listing=lambda items: listing(items, refusals),
        unreadable_answer=lambda items: (listing(items, {0: ScriptedReply.malformed_json()}), None),
    )


@pytest.fixture(params=["simulated", "dmarket-v1", "dmarket-v2"])
def case(request: pytest.FixtureRequest) -> Iterator[MarketCase]:
    with ExitStack() as stack:
        if request.param == "simulated":
            yield simulated_case(stack)
        else:
            yield dmarket_case(stack, request.param.removeprefix("dmarket-"))


def walk(market: MarketSource, limit: int) -> list[Page]:
    pages: list[Page] = []
    cursor: str | None = None
    while True:
        pages.append(market.fetch_page(cursor, limit))
        cursor = pages[-1].next_cursor
        if cursor is None:
            return pages


def test_walking_from_no_cursor_to_the_end_yields_every_item_once(case: MarketCase) -> None:
    # Given a listing of 250 items
    market = case.listing(250)
    # When it is walked in pages of 100 until the market gives no next cursor
    pages = walk(market, 100)
    # Then every item came once, in listing order, over three pages
    walked = [item.item_id for page in pages for item in page.items]
    assert walked == case.listed_ids(250)
    assert [len(page.items) for page in pages] == [100, 100, 50]


def test_every_page_tells_the_listings_total(case: MarketCase) -> None:
    pages = walk(case.listing(7), 3)
    assert [(page.total, page.total_is_lower_bound) for page in pages] == [(7, False)] * 3


def test_a_page_holds_at_most_the_limit_asked_for(case: MarketCase) -> None:
    pages = walk(case.listing(7), 3)
    assert [len(page.items) for page in pages] == [3, 3, 1]
    assert len(walk(case.listing(MAX_PAGE_SIZE + 1), MAX_PAGE_SIZE)[0].items) == MAX_PAGE_SIZE


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE_SIZE + 1])
def test_a_limit_outside_1_to_the_page_size_is_invalid_input_naming_it(
    case: MarketCase, limit: int
) -> None:
    with pytest.raises(InvalidInput, match=rf"^limit: must be between 1 and {MAX_PAGE_SIZE}"):
        case.listing(7).fetch_page(None, limit)


def test_pages_and_items_have_the_shape_the_runner_reads(case: MarketCase) -> None:
    market = case.listing(5)
    pages = walk(market, 2)
    for page in pages[:-1]:
        assert isinstance(page.next_cursor, str)
        assert page.next_cursor
    assert pages[-1].next_cursor is None
    for page in pages:
        assert isinstance(page.items, tuple)
        for item in page.items:
            assert isinstance(item, Item)
            assert isinstance(item.item_id, str)
            assert item.item_id
            assert isinstance(item.title, str)
            assert isinstance(item.price_cents, int)
            assert item.price_cents >= 0
            assert item.reference_price_cents is None or item.reference_price_cents >= 0
            assert isinstance(item.extra, dict)
            # Per-item work keeps the item as listed.
            assert market.inspect(item) == item


def test_an_answer_the_market_cannot_read_is_a_permanent_error(case: MarketCase) -> None:
    market, cursor = case.unreadable_answer(7)
    with pytest.raises(PermanentMarketError):
        market.fetch_page(cursor, 3)


def test_a_cursor_the_market_never_issued_is_a_permanent_error(case: MarketCase) -> None:
    with pytest.raises(PermanentMarketError):
        case.listing(7).fetch_page("never-issued", 3)


def test_rate_limits_and_server_errors_are_retryable_and_the_retry_gets_the_page(
    case: MarketCase,
) -> None:
    # Given a listing whose market refuses some requests with 429 or 5xx
    market = case.flaky_listing(3000)
    refusals: list[RetryableMarketError] = []
    walked: list[str] = []
    cursor: str | None = None
    # When it is walked, each refused page asked for again
    while True:
        try:
            page = market.fetch_page(cursor, 100)
        except RetryableMarketError as refused:
            refusals.append(refused)
            continue
        walked.extend(item.item_id for item in page.items)
        if (cursor := page.next_cursor) is None:
            break
    # Then the refusals were retryable, named their status, and nothing was lost or doubled
    assert refusals
    assert all(any(code in str(error) for code in RETRYABLE_STATUSES) for error in refusals)
    assert walked == case.listed_ids(3000)
