"""DMarket markets share one request budget in Redis, one pooled connection, and can sign.

Each test runs markets in this process against a loopback DMarket and the test Redis; the
fleet-wide behaviour across real worker processes is in tests/acceptance/test_dmarket_fleet.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import nacl.signing
import pytest
import redis

from tests.fakes.dmarket_server import FakeDMarket, ScriptedReply, dmarket_item, requests_over_rate
from worker.celery_glue.drain import clear_drain, drain_requested, request_drain
from worker.chain import lifecycle as scans
from worker.chain.runner import Outcome, PageContext, run_page
from worker.db import reset_engines, session_scope
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.errors import InvalidInput, PermanentMarketError, RateBudgetWait, RetryableMarketError
from worker.markets.dmarket.market import DMarketMarket
from worker.markets.fleet import process_clients
from worker.markets.fleet.budget import RequestBudget
from worker.settings import Settings, get_settings
from worker.testing.dmarket_server import ITEMS_PATH

ITEMS = [dmarket_item(f"dm-{n:03d}", f"AWP | Asiimov #{n}", 500 + n, 600 + n) for n in range(30)]
PARAMS = ScanParams(game="csgo", market="dmarket", page_size=5)
# A pause far longer than any test waits: the market must hand it back, not sleep it out.
LONG_PAUSE_SECONDS = 30


def signing_keys() -> tuple[str, str]:
    """A DMarket key pair as the account page shows it: public hex, secret hex (seed+public)."""
    signing_key = nacl.signing.SigningKey.generate()
    public = bytes(signing_key.verify_key)
    return public.hex(), (bytes(signing_key) + public).hex()


@pytest.fixture
def fake() -> Iterator[FakeDMarket]:
    with FakeDMarket(ITEMS) as server:
        yield server


def settings_for(fake: FakeDMarket, redis_url: str, **overrides: object) -> Settings:
    options: dict[str, object] = {
        "dmarket_url": fake.url,
        "broker_url": redis_url,
        "dmarket_requests_per_second": 50.0,
        "http_timeout_seconds": 5.0,
        # This file is about the v1 listing's budget (v2's: test_dmarket_v2.py).
        "dmarket_api": "v1",
    }
    options.update(overrides)
    return Settings(**options)  # type: ignore[arg-type]


def walk(market: DMarketMarket, pages: int) -> None:
    cursor = None
    for _ in range(pages):
        cursor = market.fetch_page(cursor, 5).next_cursor


# --- one budget --------------------------------------------------------------------------


def test_markets_built_one_after_another_never_exceed_the_budget_between_them(
    fake: FakeDMarket, redis_url: str
) -> None:
    # Given a budget of 3 requests/s shared through Redis
    settings = settings_for(fake, redis_url, dmarket_requests_per_second=3.0)
    # When three markets (as three pages would) each fetch three pages back to back
    for _ in range(3):
        with DMarketMarket.from_params(PARAMS, settings) as market:
            walk(market, 3)
    # Then no second held more than 3 of the 9 requests
    arrivals = [request.received_at for request in fake.requests]
    assert len(arrivals) == 9
    assert requests_over_rate(arrivals, 3) == 0


def test_the_default_budget_is_two_requests_per_second(fake: FakeDMarket, redis_url: str) -> None:
    settings = settings_for(
        fake, redis_url, dmarket_requests_per_second=Settings().dmarket_requests_per_second
    )
    with DMarketMarket.from_params(PARAMS, settings) as market:
        walk(market, 5)
    assert requests_over_rate([request.received_at for request in fake.requests], 2) == 0


def test_a_budget_of_no_requests_is_invalid_input_naming_the_rate(redis_url: str) -> None:
    with pytest.raises(InvalidInput, match=r"^requests_per_second:"):
        RequestBudget(redis.Redis.from_url(redis_url), "http://127.0.0.1:9", 0.0)


def test_an_unreachable_budget_is_a_retryable_error_and_sends_nothing(fake: FakeDMarket) -> None:
    # Given the budget's Redis does not answer (nothing listens on port 9)
    settings = settings_for(fake, "redis://127.0.0.1:9/0")
    # When a page is asked for, Then the page may retry later, and DMarket saw nothing
    with (
        DMarketMarket.from_params(PARAMS, settings) as market,
        pytest.raises(RetryableMarketError, match="budget unreachable") as failed,
    ):
        market.fetch_page(None, 5)
    assert failed.value.counts_as_retry is True
    assert fake.requests == []


def test_a_429_without_a_wait_still_pauses_the_fleet_for_one_window(
    fake: FakeDMarket, redis_url: str
) -> None:
    # Given a roomy budget (50 requests/s) and a 429 that names no wait
    settings = settings_for(fake, redis_url)
    fake.script(0, ScriptedReply.rate_limited())
    with DMarketMarket.from_params(PARAMS, settings) as market:
        with pytest.raises(RetryableMarketError):
            market.fetch_page(None, 5)
        # When the next page is asked for at once
        market.fetch_page(None, 5)
        window_seconds = market_budget_window(settings)
    # Then it reached DMarket no sooner than one budget window after the 429 (the pause is
    # set after the 429 arrived and ends before the next grant, so this cannot flake slow)
    refused, served = fake.requests
    assert served.received_at - refused.received_at >= window_seconds


def market_budget_window(settings: Settings) -> float:
    return process_clients.request_budget(
        settings.broker_url, settings.dmarket_url, settings.dmarket_requests_per_second
    ).window_seconds


def test_a_429_pauses_the_api_for_every_market_and_a_long_pause_is_handed_back(
    fake: FakeDMarket, redis_url: str
) -> None:
    settings = settings_for(fake, redis_url)
    # Given one market was told "429, retry after 30 s"
    fake.script(0, ScriptedReply.rate_limited(retry_after=str(LONG_PAUSE_SECONDS)))
    with (
        DMarketMarket.from_params(PARAMS, settings) as first,
        pytest.raises(RetryableMarketError),
    ):
        first.fetch_page(None, 5)
    # When another market asks for a page
    with (
        DMarketMarket.from_params(PARAMS, settings) as second,
        pytest.raises(RateBudgetWait) as waited,
    ):
        second.fetch_page(None, 5)
    # Then it sends nothing, and hands the wait back, not counted as a retry
    assert len(fake.requests) == 1
    assert waited.value.counts_as_retry is False
    assert waited.value.retry_after_seconds is not None
    assert LONG_PAUSE_SECONDS - 5 < waited.value.retry_after_seconds <= LONG_PAUSE_SECONDS


def test_a_drain_interrupts_a_wait_for_the_budget(fake: FakeDMarket, redis_url: str) -> None:
    # Given a budget of 1 request/s already spent
    settings = settings_for(fake, redis_url, dmarket_requests_per_second=1.0)
    # (a page task hands its market the worker's drain flag)
    with DMarketMarket.from_params(PARAMS, settings, drain_requested) as market:
        market.fetch_page(None, 5)
        # When the worker is draining and the market must wait for the next slot
        request_drain()
        try:
            with pytest.raises(RateBudgetWait) as waited:
                market.fetch_page(None, 5)
        finally:
            clear_drain()
    # Then it stopped waiting without a request and without spending a retry
    assert len(fake.requests) == 1
    assert waited.value.counts_as_retry is False


def test_a_page_waiting_for_the_budget_spends_none_of_its_retries(
    env: dict[str, str], fake: FakeDMarket, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no retries allowed at all, and the API paused 2 s by a 429 another page saw
    monkeypatch.setenv("MARKETSCAN_DMARKET_URL", fake.url)
    monkeypatch.setenv("MARKETSCAN_DMARKET_API", "v1")
    monkeypatch.setenv("MARKETSCAN_MAX_RETRIES", "0")
    monkeypatch.setenv("MARKETSCAN_SLICE_PAGES", "1")  # this page alone, then the queue
    get_settings.cache_clear()
    reset_engines()
    settings = get_settings()
    fake.script(0, ScriptedReply.rate_limited(retry_after="2"))
    with (
        DMarketMarket.from_params(PARAMS, settings) as other,
        pytest.raises(RetryableMarketError),
    ):
        other.fetch_page(None, 5)
    published: list[PageMessage] = []
    with session_scope() as session:
        scans.start_scan(session, PARAMS, settings, published.append)
    # When the scan's first page runs
    outcome = run_page(published.pop(), PageContext("w1@test", settings, publish=published.append))
    # Then it waited the pause out and committed, instead of failing for want of retries:
    # its page asked once, after the pause, and nothing else it asked (fees, best bids)
    # was refused
    assert outcome is Outcome.NEXT_PUBLISHED
    assert [request.status for request in fake.requests_to(ITEMS_PATH)] == [429, 200]
    assert [request.status for request in fake.requests if request.status != 200] == [429]


# --- pooled connections -----------------------------------------------------------------


def test_every_market_of_a_process_reuses_one_keep_alive_connection(
    fake: FakeDMarket, redis_url: str
) -> None:
    settings = settings_for(fake, redis_url)
    # When five markets, built and closed one after another as pages do, fetch two pages each
    for _ in range(5):
        with DMarketMarket.from_params(PARAMS, settings) as market:
            walk(market, 2)
    # Then the ten requests went over a single TCP connection
    assert len(fake.requests) == 10
    assert len(fake.connections) == 1


# --- signed requests ---------------------------------------------------------------------


def test_with_keys_every_request_is_signed_and_the_server_verifies_it(redis_url: str) -> None:
    public_key, secret_key = signing_keys()
    with FakeDMarket(ITEMS, public_key_hex=public_key) as fake:
        settings = settings_for(
            fake, redis_url, dmarket_public_key=public_key, dmarket_secret_key=secret_key
        )
        with DMarketMarket.from_params(PARAMS, settings) as market:
            walk(market, 3)
        assert [(r.status, r.signed) for r in fake.requests] == [(200, True)] * 3


def test_a_signature_from_another_key_is_refused_as_permanent(redis_url: str) -> None:
    server_public, _ = signing_keys()
    other_public, other_secret = signing_keys()
    with FakeDMarket(ITEMS, public_key_hex=server_public) as fake:
        settings = settings_for(
            fake, redis_url, dmarket_public_key=other_public, dmarket_secret_key=other_secret
        )
        with (
            DMarketMarket.from_params(PARAMS, settings) as market,
            pytest.raises(PermanentMarketError, match="401"),
        ):
            market.fetch_page(None, 5)


def test_without_keys_requests_carry_no_signature(fake: FakeDMarket, redis_url: str) -> None:
    with DMarketMarket.from_params(PARAMS, settings_for(fake, redis_url)) as market:
        walk(market, 2)
    assert [(r.status, r.signed) for r in fake.requests] == [(200, None)] * 2


def test_keys_never_appear_in_the_settings_repr() -> None:
    public_key, secret_key = signing_keys()
    settings = Settings(dmarket_public_key=public_key, dmarket_secret_key=secret_key)
    assert secret_key not in repr(settings)
    assert secret_key[:64] not in repr(settings)
