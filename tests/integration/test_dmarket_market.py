"""DMarketMarket against a real HTTP server shaped like DMarket, on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from tests.fakes.dmarket_server import FakeDMarket, ScriptedReply, TotalFormat, dmarket_item
from worker.domain.scan_params import ScanParams
from worker.errors import InvalidInput, PermanentMarketError, RetryableMarketError
from worker.markets.base import Item
from worker.markets.dmarket.market import DMarketMarket
from worker.settings import Settings

# Fast enough that tests do not wait on the budget; tests/integration/test_dmarket_budget.py
# is about the budget itself.
UNHURRIED_REQUESTS_PER_SECOND = 1000.0

ITEMS = [
    dmarket_item(f"item-{n}", f"AK-47 | Redline #{n}", price_cents=100 * n, suggested_cents=150 * n)
    for n in range(1, 8)
]


@pytest.fixture
def fake() -> Iterator[FakeDMarket]:
    with FakeDMarket(ITEMS) as server:
        yield server


def open_market(server: FakeDMarket, **overrides: Any) -> DMarketMarket:
    options: dict[str, Any] = {
        "base_url": server.url,
        "game": "csgo",
        "timeout_seconds": 2.0,
    }
    options.update(overrides)
    return DMarketMarket(**options)


def walk_all_pages(market: DMarketMarket, limit: int) -> list[Item]:
    items: list[Item] = []
    cursor: str | None = None
    while True:
        page = market.fetch_page(cursor, limit)
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


# --- pagination and query --------------------------------------------------------------


def test_walking_to_the_empty_cursor_returns_every_item_exactly_once(fake: FakeDMarket) -> None:
    # Given 7 listed items and pages of 3
    with open_market(fake) as market:
        # When the market is walked until the server sends an empty cursor
        items = walk_all_pages(market, limit=3)
    # Then every item came back once, in listing order, over exactly 3 requests
    assert [item.item_id for item in items] == [item["itemId"] for item in ITEMS]
    assert len(fake.requests) == 3


def test_each_request_after_the_first_sends_the_previous_pages_cursor(fake: FakeDMarket) -> None:
    # Given a market
    with open_market(fake) as market:
        # When two pages are fetched in turn
        first = market.fetch_page(None, 3)
        market.fetch_page(first.next_cursor, 3)
    # Then the first request had no cursor and the second sent the one the server gave
    first_query, second_query = (request.query for request in fake.requests)
    assert "cursor" not in first_query
    assert first.next_cursor is not None
    assert second_query["cursor"] == first.next_cursor


def test_the_first_request_sends_game_id_limit_and_currency_only(fake: FakeDMarket) -> None:
    # Given a csgo market with no price range or order
    with open_market(fake, game="csgo") as market:
        # When the first page is fetched
        market.fetch_page(None, 3)
    # Then the query is exactly the listing's required parameters
    (request,) = fake.requests
    assert request.path == "/exchange/v1/market/items"
    assert request.query == {"gameId": "a8db", "limit": "3", "currency": "USD"}


def test_an_empty_cursor_is_not_sent(fake: FakeDMarket) -> None:
    with open_market(fake) as market:
        market.fetch_page("", 3)
    assert "cursor" not in fake.requests[0].query


def test_price_range_and_order_are_sent_when_set(fake: FakeDMarket) -> None:
    # Given a market filtered to 2.00-4.00 USD, ordered by price descending
    with open_market(
        fake, price_from_cents=200, price_to_cents=400, order_by="price", order_dir="desc"
    ) as market:
        # When a page is fetched
        page = market.fetch_page(None, 10)
    # Then the filters went out as cents, and the server's filtered answer came back
    assert fake.requests[0].query == {
        "gameId": "a8db",
        "limit": "10",
        "currency": "USD",
        "priceFrom": "200",
        "priceTo": "400",
        "orderBy": "price",
        "orderDir": "desc",
    }
    assert [item.price_cents for item in page.items] == [200, 300, 400]


@pytest.mark.parametrize(
    ("game", "game_id"),
    [("csgo", "a8db"), ("cs2", "a8db"), ("dota2", "9a92"), ("tf2", "tf2"), ("rust", "rust")],
)
def test_the_user_facing_game_name_is_sent_as_dmarkets_game_id(
    fake: FakeDMarket, game: str, game_id: str
) -> None:
    with open_market(fake, game=game) as market:
        market.fetch_page(None, 1)
    assert fake.requests[0].query["gameId"] == game_id


def test_a_market_built_from_scan_params_sends_their_price_band_and_order(
    fake: FakeDMarket, redis_url: str
) -> None:
    # Given a cs2 scan narrowed to 2.00-4.00 USD, ordered by price, and settings for the fake
    params = ScanParams(
        game="cs2",
        market="dmarket",
        min_price_cents=200,
        max_price_cents=400,
        market_options={"order_by": "price", "order_dir": "asc"},
    )
    settings = Settings(
        dmarket_url=fake.url,
        broker_url=redis_url,
        dmarket_requests_per_second=UNHURRIED_REQUESTS_PER_SECOND,
        http_timeout_seconds=2.0,
        dmarket_api="v1",
    )
    # When the market is built from them and asked for a page
    with DMarketMarket.from_params(params, settings) as market:
        market.fetch_page(None, 5)
    # Then the request carries the scan's band (level and own limits combined) and order
    low, high = params.price_band
    assert fake.requests[0].query == {
        "gameId": "a8db",
        "limit": "5",
        "currency": "USD",
        "priceFrom": str(low),
        "priceTo": str(high),
        "orderBy": "price",
        "orderDir": "asc",
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sort": "price"}, r"^unknown dmarket market option 'sort'"),
        ({"order_by": 3}, r"^order_by: must be a string"),
        ({"order_dir": "sideways"}, r"^order_dir:"),
    ],
)
def test_bad_dmarket_market_options_are_invalid_input_naming_the_option(
    options: dict[str, Any], message: str
) -> None:
    params = ScanParams(game="csgo", market="dmarket", market_options=options)
    with pytest.raises(InvalidInput, match=message):
        DMarketMarket.from_params(params, Settings(dmarket_url="http://127.0.0.1:9"))


# --- what a page holds -------------------------------------------------------------------


def test_items_carry_price_reference_price_and_flat_extra() -> None:
    # Given items with a suggested price, a "0" suggestion, none, and a nested extra
    listed = [
        dmarket_item("a", "Knife", 1234, suggested_cents=1500, extra={"exterior": "fn"}),
        dmarket_item("b", "Glove", 999, suggested_cents=0),
        dmarket_item("c", "Case", 5, extra={"floatValue": 0.07, "stickers": [{"name": "x"}]}),
    ]
    with FakeDMarket(listed) as server, open_market(server) as market:
        # When the page is read
        page = market.fetch_page(None, 10)
    # Then prices are integer cents, "0" and missing suggestions mean no reference,
    # and only the flat fields of extra are kept
    assert page.items == (
        Item("a", "Knife", 1234, 1500, {"exterior": "fn"}),
        Item("b", "Glove", 999, None, {}),
        Item("c", "Case", 5, None, {"floatValue": 0.07}),
    )


def test_inspecting_an_item_returns_it_as_listed_without_a_request(fake: FakeDMarket) -> None:
    # Given an item from a fetched page
    with open_market(fake) as market:
        (item,) = market.fetch_page(None, 1).items
        # When it is inspected
        inspected = market.inspect(item)
    # Then it is unchanged and the server saw only the page request
    assert inspected == item
    assert len(fake.requests) == 1


@pytest.mark.parametrize(("total_format", "total"), [("object", 7), ("int", 7), ("missing", None)])
def test_total_is_read_from_an_object_or_an_int_and_is_none_when_missing(
    total_format: TotalFormat, total: int | None
) -> None:
    with FakeDMarket(ITEMS, total_format=total_format) as server, open_market(server) as market:
        page = market.fetch_page(None, 3)
    assert page.total == total


# --- retryable failures ------------------------------------------------------------------


def fetch_retryable(server: FakeDMarket) -> RetryableMarketError:
    with open_market(server) as market, pytest.raises(RetryableMarketError) as caught:
        market.fetch_page(None, 3)
    return caught.value


def test_429_with_retry_after_seconds_asks_for_exactly_that_wait(fake: FakeDMarket) -> None:
    fake.script(0, ScriptedReply.rate_limited(retry_after="7"))
    assert fetch_retryable(fake).retry_after_seconds == 7.0


def test_429_with_retry_after_as_an_http_date_asks_for_the_time_until_then(
    fake: FakeDMarket,
) -> None:
    # Given a 429 whose Retry-After is a date 30 s ahead (HTTP-dates have whole seconds)
    later = datetime.now(UTC) + timedelta(seconds=30)
    fake.script(0, ScriptedReply.rate_limited(retry_after=format_datetime(later, usegmt=True)))
    # Then the wait is the time until that date
    wait_seconds = fetch_retryable(fake).retry_after_seconds
    assert wait_seconds is not None
    assert 25.0 <= wait_seconds <= 30.0


def test_429_with_only_ratelimit_reset_asks_for_that_wait(fake: FakeDMarket) -> None:
    fake.script(0, ScriptedReply.rate_limited(rate_limit_reset="3"))
    assert fetch_retryable(fake).retry_after_seconds == 3.0


def test_retry_after_wins_over_ratelimit_reset(fake: FakeDMarket) -> None:
    fake.script(0, ScriptedReply.rate_limited(retry_after="5", rate_limit_reset="3"))
    assert fetch_retryable(fake).retry_after_seconds == 5.0


def test_429_without_wait_headers_leaves_the_wait_to_the_caller(fake: FakeDMarket) -> None:
    fake.script(0, ScriptedReply.rate_limited())
    error = fetch_retryable(fake)
    assert error.retry_after_seconds is None
    assert "429" in str(error)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retryable(fake: FakeDMarket, status: int) -> None:
    fake.script(0, ScriptedReply.error(status))
    assert str(status) in str(fetch_retryable(fake))


def test_a_page_that_fails_once_is_served_on_the_next_request(fake: FakeDMarket) -> None:
    # Given the first request is rate limited
    fake.script(0, ScriptedReply.rate_limited(retry_after="0"))
    with open_market(fake) as market:
        with pytest.raises(RetryableMarketError):
            market.fetch_page(None, 3)
        # When the same page is asked for again
        page = market.fetch_page(None, 3)
    # Then it arrives whole
    assert [item.item_id for item in page.items] == ["item-1", "item-2", "item-3"]


def test_a_response_slower_than_the_timeout_is_retryable(fake: FakeDMarket) -> None:
    fake.script(0, ScriptedReply.slow(delay_seconds=2.0))
    with open_market(fake, timeout_seconds=0.2) as market, pytest.raises(RetryableMarketError):
        market.fetch_page(None, 3)


def test_a_refused_connection_is_retryable() -> None:
    # Given a loopback port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    market = DMarketMarket(base_url=f"http://127.0.0.1:{port}", game="csgo", timeout_seconds=2.0)
    with market, pytest.raises(RetryableMarketError):
        market.fetch_page(None, 3)


# --- permanent failures ------------------------------------------------------------------


def fetch_permanent(server: FakeDMarket) -> str:
    with open_market(server) as market, pytest.raises(PermanentMarketError) as caught:
        market.fetch_page(None, 3)
    return str(caught.value)


@pytest.mark.parametrize("status", [400, 403, 404])
def test_client_errors_are_permanent_and_quote_status_and_body(
    fake: FakeDMarket, status: int
) -> None:
    fake.script(0, ScriptedReply.error(status, message="gameId is not supported"))
    message = fetch_permanent(fake)
    assert str(status) in message
    assert "gameId is not supported" in message


def test_malformed_json_is_permanent_and_says_so(fake: FakeDMarket) -> None:
    fake.script(0, ScriptedReply.malformed_json())
    assert fetch_permanent(fake).startswith("response body: not valid JSON")


@pytest.mark.parametrize("dropped", ["price.USD", "price"])
def test_a_listing_without_a_price_is_walked_past_and_counted(
    fake: FakeDMarket, dropped: str
) -> None:
    # Real answers leave unused prices out (or send ""): not a reason to fail a scan.
    fake.script(0, ScriptedReply.missing_field(dropped))
    with open_market(fake) as market:
        page = market.fetch_page(None, 3)
    assert [item.item_id for item in page.items] == ["item-2", "item-3"]
    assert page.unusable == 1


@pytest.mark.parametrize(
    ("dropped", "message"),
    [
        ("itemId", "objects[0].itemId: expected a non-empty string, got missing"),
        ("title", "objects[0].title: expected a string, got missing"),
    ],
)
def test_a_missing_required_field_is_permanent_naming_its_path(
    fake: FakeDMarket, dropped: str, message: str
) -> None:
    fake.script(0, ScriptedReply.missing_field(dropped))
    assert fetch_permanent(fake) == message


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            {"objects": [*ITEMS[:3], {**ITEMS[3], "price": {"USD": "abc"}}], "cursor": ""},
            "objects[3].price.USD: expected a string of integer cents, got 'abc'",
        ),
        (
            {"objects": [{**ITEMS[0], "suggestedPrice": {"USD": "12.50"}}], "cursor": ""},
            "objects[0].suggestedPrice.USD: expected a string of integer cents, got '12.50'",
        ),
        ({"objects": {"0": ITEMS[0]}}, "objects: expected a list, got {'0': {"),
        ({"cursor": ""}, "objects: expected a list, got missing"),
        ([], "response body: expected an object, got []"),
        ({"objects": [], "cursor": 5}, "cursor: expected a string, got 5"),
        ({"objects": [], "total": {"offers": 3}}, "total.items: expected a non-negative integer"),
    ],
)
def test_a_malformed_listing_is_permanent_naming_what_was_wrong(
    fake: FakeDMarket, payload: object, message: str
) -> None:
    fake.script(0, ScriptedReply.json_body(payload))
    assert fetch_permanent(fake).startswith(message)


# --- invalid input -----------------------------------------------------------------------


def test_an_unknown_game_is_invalid_input_listing_the_allowed_games() -> None:
    with pytest.raises(InvalidInput) as caught:
        DMarketMarket(base_url="http://127.0.0.1:9", game="minecraft")
    message = str(caught.value)
    assert message.startswith("game:")
    for allowed in ("csgo", "cs2", "dota2", "tf2", "rust"):
        assert allowed in message


@pytest.mark.parametrize("limit", [0, 101, -1])
def test_a_limit_outside_1_to_100_is_invalid_input_and_sends_nothing(
    fake: FakeDMarket, limit: int
) -> None:
    with open_market(fake) as market, pytest.raises(InvalidInput, match=r"^limit:"):
        market.fetch_page(None, limit)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"order_dir": "up"}, "order_dir"),
        ({"price_from_cents": -1}, "price_from_cents"),
        ({"price_from_cents": 500, "price_to_cents": 100}, "price_from_cents"),
    ],
)
def test_invalid_filters_are_invalid_input_naming_the_field(
    overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput, match=rf"^{field}:"):
        DMarketMarket(base_url="http://127.0.0.1:9", game="csgo", **overrides)
