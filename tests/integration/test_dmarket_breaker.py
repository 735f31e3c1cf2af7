"""The fleet's circuit breaker for DMarket, in a real Redis against the loopback DMarket:
what opens it, the single probe after the cool-down, and a whole scan riding out an outage
without failing or spending its retries."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity
from tests.fakes.dmarket_server import FakeDMarket, dmarket_item
from worker import client as app_client
from worker import redis_keys
from worker.chain import lifecycle as scans
from worker.chain.runner import Outcome, PageContext, run_page
from worker.cli.main import main
from worker.db import reset_engines, session_scope
from worker.domain.checkpoint import Checkpoint
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.domain.status import ScanStatus
from worker.markets.dmarket.market import DMarketMarket
from worker.markets.fleet import breaker
from worker.markets.fleet.breaker import CircuitBreaker, MarketUnavailable
from worker.settings import Settings, get_settings

ITEMS = [
    dmarket_item(f"o-{n:03d}", f"Title {n}", 1000 + 10 * n, 1300 + (n % 3) * 100) for n in range(40)
]
# Each title sells this week at its best bid: liquid, so a listing under it is a find.
SALES = {f"Title {n}": [1300 + (n % 3) * 100] * 3 for n in range(40)}
COOLDOWN_SECONDS = 0.4


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    for prefix in (redis_keys.BREAKER_PREFIX, redis_keys.REFERENCE_PREFIX):
        for key in connection.scan_iter(f"{prefix}*"):
            connection.delete(key)
    yield connection
    connection.close()


def fleet_breaker(client: redis.Redis, market: str = "http://dmarket.test") -> CircuitBreaker:
    return CircuitBreaker(client, market, failures_to_open=3, cooldown_seconds=COOLDOWN_SECONDS)


def test_n_failures_in_a_row_across_processes_open_it_and_a_success_between_resets(
    client: redis.Redis,
) -> None:
    first, second = fleet_breaker(client), fleet_breaker(client)
    assert not first.record_failure("503")
    assert not second.record_failure("503")
    first.record_success()
    assert not first.record_failure("503")
    assert not second.record_failure("503")
    assert second.record_failure("timeout")
    assert breaker.is_open(client, "http://dmarket.test")
    with pytest.raises(MarketUnavailable) as waiting:
        first.before_request()
    assert waiting.value.counts_as_retry is False
    assert str(waiting.value).startswith("market unavailable since ")


def test_after_the_cool_down_one_request_probes_and_its_success_closes_it(
    client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="worker.markets.fleet.breaker")
    first, second = fleet_breaker(client), fleet_breaker(client)
    assert first.record_failure("DMarket answered 401", at_once=True)
    since = first.state()
    time.sleep(COOLDOWN_SECONDS + 0.1)
    first.before_request()  # the probe
    with pytest.raises(MarketUnavailable):
        second.before_request()  # everyone else still waits
    # A failed probe keeps it open, for another cool-down, since the same moment
    assert first.record_failure("DMarket answered 503")
    assert first.state() is not None and first.state().since == since.since  # type: ignore[union-attr]
    with pytest.raises(MarketUnavailable):
        first.before_request()
    time.sleep(COOLDOWN_SECONDS + 0.1)
    second.before_request()
    second.record_success()
    assert not breaker.is_open(client, "http://dmarket.test")
    first.before_request()
    logged = [record.getMessage() for record in caplog.records]
    assert any("breaker opened: DMarket answered 401" in line for line in logged)
    assert any("half-open" in line for line in logged)
    assert any("breaker closed" in line for line in logged)


def test_a_401_opens_it_at_once_with_what_to_do_as_the_cause(client: redis.Redis) -> None:
    with FakeDMarket(ITEMS, public_key_hex="00" * 32) as fake:
        market = DMarketMarket(
            base_url=fake.url, game="csgo", api="v2", breaker=fleet_breaker(client, fake.url)
        )
        with market, pytest.raises(MarketUnavailable, match="set MARKETSCAN_DMARKET_PUBLIC_KEY"):
            market.fetch_page(None, 10)
        state = breaker.breaker_state(client, fake.url)
        assert state is not None and "DMarket refused an unsigned request" in state.cause
        # While open, nothing more reaches DMarket
        with market, pytest.raises(MarketUnavailable):
            market.fetch_page(None, 10)
        assert len(fake.requests) == 1


@pytest.fixture
def settings(
    env: dict[str, str], client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Settings, FakeDMarket]]:
    with FakeDMarket(ITEMS, sales=SALES) as fake:
        monkeypatch.setenv("MARKETSCAN_DMARKET_URL", fake.url)
        # The fee the finds are reckoned with below (DMarket's own: test_dmarket_fees.py).
        monkeypatch.setenv("MARKETSCAN_FEE", "0.07")
        monkeypatch.setenv("MARKETSCAN_DMARKET_REQUESTS_PER_SECOND", "100")
        monkeypatch.setenv("MARKETSCAN_DMARKET_OTHER_REQUESTS_PER_SECOND", "100")
        monkeypatch.setenv("MARKETSCAN_DMARKET_BREAKER_FAILURES", "3")
        monkeypatch.setenv("MARKETSCAN_DMARKET_BREAKER_COOLDOWN_SECONDS", str(COOLDOWN_SECONDS))
        # Fewer retries than the outage has failures: only the breaker can save the scan.
        monkeypatch.setenv("MARKETSCAN_MAX_RETRIES", "2")
        monkeypatch.setenv("MARKETSCAN_RETRY_BACKOFF_SECONDS", "0.05")
        monkeypatch.setenv("MARKETSCAN_SLICE_PAGES", "1")
        get_settings.cache_clear()
        reset_engines()
        yield get_settings(), fake


def test_a_scan_rides_out_an_outage_waiting_and_completes_exactly(
    settings: tuple[Settings, FakeDMarket], session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    config, fake = settings
    # Given page 0 done, and then DMarket down for 2 seconds
    with caplog.at_level(logging.WARNING, logger="worker.chain.fetch"):
        scan_id, outcomes = _scan_through_outage(config, fake, 2.0)
    # (the page that waited said so once, not at every poll of the breaker)
    waits = [record for record in caplog.records if "waiting, trying again" in record.message]
    assert len(waits) == 1, [record.message for record in caplog.records]
    # Then the scan completed exactly, never failed, and recovered nothing
    row = _row(session, scan_id)
    assert outcomes[-1] is Outcome.COMPLETED
    assert (row.status, row.processed_items, row.recoveries) == ("completed", 40, 0)
    found = set(session.scalars(select(ScanOpportunity.item_id)))
    # (the fake's best bid of each title is its suggested price)
    expected = {
        f"o-{n:03d}"
        for n in range(40)
        if (1300 + (n % 3) * 100) * (1 - config.fee) - (1000 + 10 * n) >= 0.05 * (1000 + 10 * n)
    }
    assert found == expected and 0 < len(expected) < 40
    # and while DMarket was down, the fleet sent it a request per cool-down at most
    refused = [request for request in fake.requests if request.status == 503]
    assert 3 <= len(refused) <= 3 + 2.0 / COOLDOWN_SECONDS + 1


def test_fewer_retries_than_the_breaker_asks_still_wait_out_an_outage(
    settings: tuple[Settings, FakeDMarket], session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one retry a page, under a breaker set to open at the third failure in a row
    _, fake = settings
    monkeypatch.setenv("MARKETSCAN_MAX_RETRIES", "1")
    get_settings.cache_clear()
    config = get_settings()
    assert config.dmarket_breaker_failures == 3
    # When DMarket goes down for 1.5 seconds once page 0 is done
    scan_id, outcomes = _scan_through_outage(config, fake, 1.5)
    # Then the breaker opened by the page's last retry and the scan waited, never failed
    row = _row(session, scan_id)
    assert outcomes[-1] is Outcome.COMPLETED
    assert (row.status, row.processed_items, row.error_message) == ("completed", 40, None)


def test_scan_status_prints_the_wait_while_the_breaker_is_open(
    settings: tuple[Settings, FakeDMarket], client: redis.Redis
) -> None:
    config, _ = settings
    params = ScanParams(game="csgo", market="dmarket", page_size=10)
    with session_scope() as opened:
        scan_id = scans.start_scan(opened, params, config, lambda message: None)
    fleet_breaker(client, config.dmarket_url).record_failure("DMarket answered 502", at_once=True)
    shown = CliRunner().invoke(main, ["scan", "status", str(scan_id)])
    assert shown.exit_code == 0, shown.stderr
    (line,) = [text for text in shown.stdout.splitlines() if "waiting:" in text]
    assert line.strip().startswith("waiting: market unavailable since ")
    assert line.strip().endswith("(DMarket answered 502)")


def test_status_says_waiting_market_unavailable_while_the_breaker_is_open(
    settings: tuple[Settings, FakeDMarket], client: redis.Redis
) -> None:
    config, _ = settings
    checkpoint = Checkpoint(
        scan_id=uuid.uuid4(),
        user_id=0,
        operation_type="market_scan",
        cursor=None,
        processed_items=0,
        total_items=None,
        timestamp=datetime.now(UTC),
        metadata={},
        status=ScanStatus.IN_PROGRESS,
        params={"market": "dmarket"},
    )
    assert app_client.market_wait(checkpoint) is None
    fleet_breaker(client, config.dmarket_url).record_failure("DMarket answered 503", at_once=True)
    waiting = app_client.market_wait(checkpoint)
    assert waiting is not None and waiting.startswith("market unavailable since ")
    assert waiting.endswith("(DMarket answered 503)")


def _scan_through_outage(
    config: Settings, fake: FakeDMarket, outage_seconds: float
) -> tuple[uuid.UUID, list[Outcome]]:
    """A scan of 10-item pages whose page 0 is done before DMarket goes down for
    `outage_seconds`, then driven to its end; its id and the later pages' outcomes."""
    published: list[PageMessage] = []
    params = ScanParams(game="csgo", market="dmarket", page_size=10)
    with session_scope() as opened:
        scan_id = scans.start_scan(opened, params, config, published.append)
    context = PageContext("w1@test", config, publish=published.append)
    assert run_page(published.pop(0), context) is Outcome.NEXT_PUBLISHED
    fake.outage(outage_seconds)
    outcomes = []
    while published:
        outcomes.append(run_page(published.pop(0), context))
    return scan_id, outcomes


def _row(session: Session, scan_id: uuid.UUID) -> ScanCheckpoint:
    session.expire_all()
    return session.scalars(select(ScanCheckpoint).where(ScanCheckpoint.scan_id == scan_id)).one()
