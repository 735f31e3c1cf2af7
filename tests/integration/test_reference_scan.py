"""Whole v2 scans judged against a reference price, against the loopback DMarket: what is
stored with each opportunity, listings with no reference, one lookup per page, a lookup
answered badly, and a reference the scan cannot have refused before anything is stored."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity
from tests.fakes.dmarket_server import FakeDMarket, ScriptedReply, dmarket_item
from worker import client as app_client
from worker import redis_keys
from worker.chain import lifecycle as scans
from worker.chain.runner import Outcome, PageContext, run_page
from worker.cli.main import main
from worker.db import reset_engines, session_scope
from worker.domain.page_message import PageMessage
from worker.domain.reference import REFERENCE_CODES
from worker.domain.scan_params import ScanParams
from worker.errors import InvalidInput
from worker.settings import Settings, get_settings

AGGREGATED = "/marketplace-api/v1/aggregated-prices"
OFFERS = "/marketplace-api/v2/offers"
# 60 listings of 20 titles, three listings a title, prices 1000..1059 cents.
ITEMS = [dmarket_item(f"offer-{n:03d}", f"Title {n % 20}", 1000 + n) for n in range(60)]
# Best bids: titles 0..9 bid 1300 (5 orders), titles 10..14 bid 900, titles 15..19 none.
BIDS = {f"Title {t}": (1300, 5) if t < 10 else (900, 2) for t in range(15)}
# Titles 0..9 sold three times this week at their bid: liquid, so their finds are stored.
SALES = {f"Title {t}": [1300, 1300, 1300] for t in range(10)}


def expected_opportunities(fee: float, min_profit: float) -> set[str]:
    """The walk a person would do: listings under best_bid * (1 - fee) by the margin."""
    found = set()
    for item in ITEMS:
        bid = BIDS.get(item["title"])
        price = int(item["price"]["USD"])
        if bid is not None and (bid[0] * (1 - fee) - price) / price >= min_profit:
            found.add(item["itemId"])
    return found


@pytest.fixture
def fake() -> Iterator[FakeDMarket]:
    with FakeDMarket(ITEMS, best_bids=BIDS) as server:
        yield server


@pytest.fixture
def settings(env: dict[str, str], fake: FakeDMarket, monkeypatch: pytest.MonkeyPatch) -> Settings:
    client = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    for key in client.scan_iter(f"{redis_keys.REFERENCE_PREFIX}*"):
        client.delete(key)
    client.close()
    monkeypatch.setenv("MARKETSCAN_DMARKET_URL", fake.url)
    # The fee the finds are reckoned with below (DMarket's own: test_dmarket_fees.py).
    monkeypatch.setenv("MARKETSCAN_FEE", "0.07")
    monkeypatch.setenv("MARKETSCAN_DMARKET_REQUESTS_PER_SECOND", "100")
    monkeypatch.setenv("MARKETSCAN_DMARKET_OTHER_REQUESTS_PER_SECOND", "100")
    monkeypatch.setenv("MARKETSCAN_RETRY_BACKOFF_SECONDS", "0.01")
    monkeypatch.setenv("MARKETSCAN_SLICE_PAGES", "1")
    get_settings.cache_clear()
    reset_engines()
    return get_settings()


def _scan(settings: Settings, **params: object) -> tuple[uuid.UUID, list[Outcome]]:
    published: list[PageMessage] = []
    wanted = ScanParams(game="csgo", market="dmarket", page_size=20, **params)  # type: ignore[arg-type]
    with session_scope() as session:
        scan_id = scans.start_scan(session, wanted, settings, published.append)
    outcomes = []
    while published:
        context = PageContext("w1@test", settings, publish=published.append)
        outcomes.append(run_page(published.pop(0), context))
    return scan_id, outcomes


def _row(session: Session, scan_id: uuid.UUID) -> ScanCheckpoint:
    session.expire_all()
    return session.scalars(select(ScanCheckpoint).where(ScanCheckpoint.scan_id == scan_id)).one()


def test_a_v2_scan_finds_exactly_the_listings_under_the_best_bid_and_records_the_reference(
    settings: Settings, fake: FakeDMarket, session: Session
) -> None:
    fake.set_sales(SALES)
    before = datetime.now(UTC)
    scan_id, outcomes = _scan(settings)
    assert outcomes[-1] is Outcome.COMPLETED
    params = ScanParams.from_json(_row(session, scan_id).params)
    assert params.reference == "best_bid"  # the default, frozen into the params
    stored = session.scalars(select(ScanOpportunity)).all()
    assert {found.item_id for found in stored} == expected_opportunities(
        settings.fee, params.min_profit
    )
    assert stored
    for found in stored:
        assert found.reference_kind == REFERENCE_CODES["best_bid"]
        assert (found.reference_price_cents, found.order_count) == (1300, 5)
        assert found.reference_fetched_at is not None
        assert before - timedelta(seconds=1) <= found.reference_fetched_at <= datetime.now(UTC)
    # Then the listings of the 5 titles without a bid are counted, not failed
    row = _row(session, scan_id)
    assert (row.status, row.processed_items, row.unreferenced_items) == ("completed", 60, 15)
    # And results say what each was judged against
    shown = app_client.results(scan_id, top=3)
    assert [(hit["reference_kind"], hit["order_count"]) for hit in shown] == [("best_bid", 5)] * 3


def test_each_page_asks_once_for_its_titles_and_a_title_seen_before_not_at_all(
    settings: Settings, fake: FakeDMarket
) -> None:
    _scan(settings)
    lookups = [request for request in fake.requests if request.path == AGGREGATED]
    pages = [request for request in fake.requests if request.path == OFFERS]
    # 3 pages of 20 listings: page 0 lists all 20 titles, pages 1 and 2 only cached ones.
    assert (len(pages), len(lookups)) == (3, 1)
    assert all(request.method == "POST" for request in lookups)
    # When a second scan runs within the TTL, Then it asks for no reference at all
    _scan(settings)
    assert len([request for request in fake.requests if request.path == AGGREGATED]) == 1


def test_a_lookup_answered_badly_is_retried_and_the_page_is_not_fetched_again(
    settings: Settings, fake: FakeDMarket, session: Session
) -> None:
    # Given the first lookup's answer is cut off
    fake.set_sales(SALES)
    fake.script(0, ScriptedReply(body=b'{"aggregatedPrices": [{"title'), path=AGGREGATED)
    scan_id, outcomes = _scan(settings)
    # Then the scan completes exactly, the listing of page 0 fetched once
    assert outcomes[-1] is Outcome.COMPLETED
    assert [request.path for request in fake.requests[:3]] == [OFFERS, AGGREGATED, AGGREGATED]
    assert _row(session, scan_id).processed_items == 60
    assert {found.item_id for found in session.scalars(select(ScanOpportunity))} == (
        expected_opportunities(settings.fee, 0.05)
    )


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("mid", "reference must be one of best_bid, last_sales, suggested, skinport, got 'mid'"),
        (
            "suggested",
            "reference 'suggested' is not available with DMarket v2: allowed are "
            "best_bid, last_sales, skinport",
        ),
    ],
)
def test_a_reference_the_scan_cannot_have_is_one_line_exit_2_and_nothing_stored(
    settings: Settings, session: Session, reference: str, message: str
) -> None:
    result = CliRunner().invoke(
        main, ["scan", "start", "--game", "csgo", "--market", "dmarket", "--reference", reference]
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.endswith(message)
    assert session.scalar(select(func.count()).select_from(ScanCheckpoint)) == 0


def test_the_start_task_refuses_suggested_with_v2_by_name(settings: Settings) -> None:
    published: list[PageMessage] = []
    asked = {"game": "csgo", "market": "dmarket", "reference": "suggested"}
    params = ScanParams.from_request(asked)
    with session_scope() as session, pytest.raises(InvalidInput, match="reference 'suggested'"):
        scans.start_scan(session, params, settings, published.append)
    assert published == []


def test_last_sales_is_a_choice_and_is_frozen_into_the_params(
    settings: Settings, session: Session
) -> None:
    scan_id, outcomes = _scan(settings, reference="last_sales")
    assert outcomes[-1] is Outcome.COMPLETED
    row = _row(session, scan_id)
    assert ScanParams.from_json(row.params).reference == "last_sales"
    # The fake has no sales: nothing is an opportunity, every listing counted as such.
    stored = session.scalar(select(func.count()).select_from(ScanOpportunity))
    assert (row.unreferenced_items, stored) == (60, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--market", "dmarket", "--market-opt", "currency=EUR"],
            "market option currency must be one of USD, got 'EUR'",
        ),
        (
            ["--market", "simulated"],
            "reference 'skinport' is not available with the simulated market: allowed are "
            "suggested",
        ),
    ],
)
def test_skinport_elsewhere_than_dmarket_in_usd_is_one_line_exit_2_and_nothing_stored(
    settings: Settings, session: Session, args: list[str], message: str
) -> None:
    # Given a Skinport reference asked in euros, or on the simulated market
    result = CliRunner().invoke(
        main, ["scan", "start", "--game", "csgo", "--reference", "skinport", *args]
    )
    # Then one line names the option and its allowed values, and nothing is stored
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.endswith(message)
    assert session.scalar(select(func.count()).select_from(ScanCheckpoint)) == 0
