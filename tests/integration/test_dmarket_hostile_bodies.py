"""Hostile bodies from a loopback DMarket: too large, a compression bomb, nested past what
Python reads, numbers past what it converts, values past their bounds. Each is a market
error of its kind within a bound on time, never an exception that leaves the page to be
delivered again and again (a poison page), and nothing past its bound is stored.

The kinds: a listing page's body is permanent (the scan fails at once, naming it); a
reference lookup's is retryable (the page waits and asks again, the listing kept); one
listing's own value past its bound walks past that listing, counted.
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity
from tests.fakes.dmarket_server import FakeDMarket, ScriptedReply, dmarket_item
from worker import redis_keys
from worker.chain import lifecycle as scans
from worker.chain.runner import Outcome, PageContext, run_page
from worker.db import reset_engines, session_scope
from worker.domain.listing import Item, Page
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.errors import MarketError, PermanentMarketError, RetryableMarketError
from worker.markets.dmarket import bounds
from worker.markets.dmarket.market import DMarketMarket
from worker.markets.dmarket.transport import DMarketTransport
from worker.markets.fleet import process_clients, response_body
from worker.markets.references.best_bid import BestBidReference
from worker.markets.references.cache import ReferenceCache
from worker.markets.references.last_sales import LastSalesReference
from worker.settings import Settings, get_settings
from worker.testing.dmarket_server import ITEMS_PATH

# The issue asks for 100 ms; a shared, noisy test machine gets ten times that.
FETCH_MAX_SECONDS = 1.0
OVER_THE_BODY_BOUND = response_body.BODY_MAX_BYTES + 1
HUGE_DIGITS = "9" * 5000

# Every 7th listing is under its suggested price: an opportunity.
ITEMS = [
    dmarket_item(f"dm-{n:04d}", f"AK-47 | Redline #{n}", 1000 + n, 1000 + n + (400 * (n % 7 == 0)))
    for n in range(250)
]


def padded(payload: dict[str, Any], size: int) -> bytes:
    """`payload` as JSON of exactly `size` bytes, padded with a string nobody reads."""
    text = json.dumps({**payload, "pad": ""})
    return (text[:-2] + " " * (size - len(text)) + '"}').encode()


def nested(depth: int) -> bytes:
    return b'{"objects": ' + b"[" * depth + b"]" * depth + b', "cursor": ""}'


def gzip_bomb(size: int) -> bytes:
    """A valid gzip of a JSON page `size` bytes long, inflating about a thousandfold."""
    return gzip.compress(padded({"objects": [], "cursor": ""}, size), compresslevel=9)


# --- one listing page from each hostile body ----------------------------------------------

PAGE_BODIES = [
    (
        "body past its bound",
        ScriptedReply(body=padded({"objects": [], "cursor": ""}, OVER_THE_BODY_BOUND)),
        f"response body: over {response_body.BODY_MAX_BYTES} bytes",
    ),
    (
        "gzip inflating past the bound",
        ScriptedReply(body=gzip_bomb(16 * 1024 * 1024), headers={"Content-Encoding": "gzip"}),
        f"response body: over {response_body.BODY_MAX_BYTES} bytes",
    ),
    (
        "gzip that does not inflate",
        ScriptedReply(body=b"\x1f\x8b\x08\x00broken", headers={"Content-Encoding": "gzip"}),
        "response body: not valid gzip",
    ),
    (
        "an encoding never asked for",
        ScriptedReply(body=b'{"objects": [], "cursor": ""}', headers={"Content-Encoding": "zz"}),
        "response body: Content-Encoding 'zz' was not asked for",
    ),
    (
        "arrays nested 100,000 deep",
        ScriptedReply(body=nested(100_000)),
        "response body: not valid JSON (nested deeper than",
    ),
    (
        "a total of 5,000 digits",
        ScriptedReply(
            body=b'{"objects": [], "cursor": "", "total": ' + HUGE_DIGITS.encode() + b"}"
        ),
        "total: expected a non-negative integer, got <a number of 5000 digits>",
    ),
    (
        "a cursor past 64 KiB",
        ScriptedReply.json_body({"objects": ITEMS[:3], "cursor": "c" * (64 * 1024 + 1)}),
        "cursor: 65537 bytes, over 65536",
    ),
]


@pytest.fixture
def fake() -> Iterator[FakeDMarket]:
    with FakeDMarket(ITEMS) as server:
        yield server


def timed_fetch(fetch: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    try:
        outcome = fetch()
    except MarketError as exc:
        outcome = exc
    return outcome, time.perf_counter() - started


@pytest.mark.parametrize(
    ("reply", "message"),
    [case[1:] for case in PAGE_BODIES],
    ids=[case[0] for case in PAGE_BODIES],
)
def test_a_hostile_listing_body_is_a_permanent_error_naming_it_at_once(
    fake: FakeDMarket, reply: ScriptedReply, message: str
) -> None:
    # Given DMarket answers the first page with a hostile body
    fake.script(0, reply)
    # When the page is fetched
    with DMarketMarket(base_url=fake.url, game="csgo", api="v1", timeout_seconds=5.0) as market:
        failure, seconds = timed_fetch(lambda: market.fetch_page(None, 3))
    # Then it is a malformed page, named, within the bound
    assert isinstance(failure, PermanentMarketError), failure
    assert str(failure).startswith(message), str(failure)
    assert len(str(failure)) < 400
    assert seconds < FETCH_MAX_SECONDS


def test_a_server_error_with_a_hostile_body_is_still_a_retryable_5xx(fake: FakeDMarket) -> None:
    # Given a 500 whose body is nested past what Python reads
    fake.script(0, ScriptedReply(status=500, body=nested(100_000)))
    # When the page is fetched, Then it is the 500 it is, quoting a bounded excerpt
    with DMarketMarket(base_url=fake.url, game="csgo", api="v1", timeout_seconds=5.0) as market:
        failure, seconds = timed_fetch(lambda: market.fetch_page(None, 3))
    assert isinstance(failure, RetryableMarketError), failure
    assert str(failure).startswith("DMarket answered 500: {")
    assert len(str(failure)) < 400
    assert seconds < FETCH_MAX_SECONDS


def test_a_v2_listing_priced_past_what_python_converts_is_walked_past(fake: FakeDMarket) -> None:
    # Given a v2 page whose first offer's price is a JSON number of 5,000 digits
    body = json.dumps(
        {
            "items": [
                {"offerId": "odd", "priceCents": 1, "attributes": {"title": "AK-47 | Redline"}},
                {"offerId": "good", "priceCents": 1000, "attributes": {"title": "M4A4 | Howl"}},
            ],
            "cursor": "",
        }
    ).replace('"priceCents": 1,', f'"priceCents": {HUGE_DIGITS},')
    fake.script(0, ScriptedReply(body=body.encode()))
    # When the page is fetched
    with DMarketMarket(base_url=fake.url, game="csgo", api="v2", timeout_seconds=5.0) as market:
        page, seconds = timed_fetch(lambda: market.fetch_page(None, 3))
    # Then only that offer is walked past, counted
    assert isinstance(page, Page), page
    assert ([item.item_id for item in page.items], page.unusable) == (["good"], 1)
    assert seconds < FETCH_MAX_SECONDS


def test_a_gzipped_page_within_the_bound_is_read_as_ever(fake: FakeDMarket) -> None:
    # Given DMarket gzips its answer, as it may
    page_body = {"objects": ITEMS[:3], "cursor": ""}
    fake.script(
        0,
        ScriptedReply(
            body=gzip.compress(json.dumps(page_body).encode()), headers={"Content-Encoding": "gzip"}
        ),
    )
    # When the page is fetched, Then its listings are there
    with DMarketMarket(base_url=fake.url, game="csgo", api="v1", timeout_seconds=5.0) as market:
        page = market.fetch_page(None, 3)
    assert [item.item_id for item in page.items] == ["dm-0000", "dm-0001", "dm-0002"]


# --- a reference lookup from each hostile body --------------------------------------------

LOOKED_UP = [Item("dm-0000", "AK-47 | Redline #0", 1000, None)]
LOOKUP_PATHS = {
    "best_bid": "/marketplace-api/v1/aggregated-prices",
    "last_sales": "/trade-aggregator/v1/last-sales",
}

REFERENCE_BODIES = [
    (
        "last sale of 1e999990 dollars",
        "last_sales",
        json.dumps({"sales": [{"price": "1e999990"}]}).encode(),
    ),
    (
        "last sale of 1e999999999 dollars",
        "last_sales",
        json.dumps({"sales": [{"price": "1e999999999"}]}).encode(),
    ),
    (
        "last sales nested 100,000 deep",
        "last_sales",
        b'{"sales": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ),
    ("last sales past the body bound", "last_sales", padded({"sales": []}, OVER_THE_BODY_BOUND)),
    (
        "best bid of 5,000 digits",
        "best_bid",
        json.dumps(
            {
                "aggregatedPrices": [
                    {
                        "title": "AK-47 | Redline #0",
                        "orderBestPrice": {"Amount": HUGE_DIGITS},
                        "orderCount": "1",
                    }
                ]
            }
        ).encode(),
    ),
    (
        "best bid past the body bound",
        "best_bid",
        padded({"aggregatedPrices": []}, OVER_THE_BODY_BOUND),
    ),
    ("best bid nested 100,000 deep", "best_bid", b"[" * 100_000 + b"]" * 100_000),
]


@pytest.fixture
def cache_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{redis_keys.REFERENCE_PREFIX}*"):
        client.delete(key)
    yield client
    client.close()


@pytest.mark.parametrize(
    ("kind", "body"),
    [case[1:] for case in REFERENCE_BODIES],
    ids=[case[0] for case in REFERENCE_BODIES],
)
def test_a_hostile_reference_answer_is_retryable_at_once(
    fake: FakeDMarket, cache_client: redis.Redis, kind: str, body: bytes
) -> None:
    # Given DMarket answers the lookup with a hostile body
    fake.script(0, ScriptedReply(body=body))
    transport = DMarketTransport(process_clients.new_http_client(fake.url, 5.0))
    cache = ReferenceCache(cache_client, kind, "a8db", 60.0)
    maker = BestBidReference if kind == "best_bid" else LastSalesReference
    source = maker(transport, "a8db", cache)
    try:
        # When a page's references are looked up
        failure, seconds = timed_fetch(lambda: source.references(LOOKED_UP))
    finally:
        transport.client.close()
    # Then the lookup is retryable (the page waits and asks again), within the bound
    assert isinstance(failure, RetryableMarketError), failure
    assert len(str(failure)) < 400
    assert seconds < FETCH_MAX_SECONDS


# --- whole scans: such a page is walked, failed or waited for, never a poison page --------


def settings_for(
    env: dict[str, str], fake: FakeDMarket, monkeypatch: pytest.MonkeyPatch, api: str
) -> Settings:
    monkeypatch.setenv("MARKETSCAN_DMARKET_URL", fake.url)
    monkeypatch.setenv("MARKETSCAN_DMARKET_API", api)
    monkeypatch.setenv("MARKETSCAN_DMARKET_REQUESTS_PER_SECOND", "100")
    monkeypatch.setenv("MARKETSCAN_DMARKET_OTHER_REQUESTS_PER_SECOND", "100")
    monkeypatch.setenv("MARKETSCAN_RETRY_BACKOFF_SECONDS", "0.01")
    monkeypatch.setenv("MARKETSCAN_MAX_RETRIES", "3")
    # One page per task, so each page's outcome is seen on its own.
    monkeypatch.setenv("MARKETSCAN_SLICE_PAGES", "1")
    get_settings.cache_clear()
    reset_engines()
    return get_settings()


def run_scan(settings: Settings, **params: Any) -> tuple[uuid.UUID, list[Outcome]]:
    published: list[PageMessage] = []
    wanted = ScanParams(game="csgo", market="dmarket", fee=settings.fee, **params)
    with session_scope() as session:
        scan_id = scans.start_scan(session, wanted, settings, published.append)
    outcomes = []
    while published:
        context = PageContext("w1@test", settings, publish=published.append)
        outcomes.append(run_page(published.pop(0), context))
    return scan_id, outcomes


def row_of(session: Session, scan_id: uuid.UUID) -> ScanCheckpoint:
    session.expire_all()
    return session.scalars(select(ScanCheckpoint).where(ScanCheckpoint.scan_id == scan_id)).one()


# Each would be an opportunity (listed at 1000, suggested 5000) if it were read.
def odd_listing(**changed: Any) -> dict[str, Any]:
    return {**dmarket_item("odd", "AK-47 | Redline", 1000, 5000), **changed}


ODD_LISTINGS = [
    ("price of 5,000 digits", odd_listing(price={"USD": HUGE_DIGITS})),
    ("suggested price of 5,000 digits", odd_listing(suggestedPrice={"USD": HUGE_DIGITS})),
    ("item id past its bound", odd_listing(itemId="i" * (bounds.ITEM_ID_MAX_BYTES + 1))),
    ("title past its bound", odd_listing(title="T" * (bounds.TITLE_MAX_BYTES + 1))),
    ("title with a lone surrogate", odd_listing(title="AK-47 | Red\ud800line")),
    ("item id with a lone surrogate", odd_listing(itemId="odd-\udfff")),
]


@pytest.mark.parametrize(
    "odd", [case[1] for case in ODD_LISTINGS], ids=[case[0] for case in ODD_LISTINGS]
)
def test_a_listing_past_a_bound_is_skipped_and_counted_and_the_scan_completes(
    env: dict[str, str],
    fake: FakeDMarket,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
    odd: dict[str, Any],
) -> None:
    # Given the listing's only page holds an odd listing between two good ones
    good = [
        dmarket_item("good", "M4A4 | Howl", 1000, 5000),
        dmarket_item("dull", "P250", 1000, 1000),
    ]
    fake.script(0, ScriptedReply.json_body({"objects": [good[0], odd, good[1]], "cursor": ""}))
    settings = settings_for(env, fake, monkeypatch, "v1")
    # When the scan runs
    scan_id, outcomes = run_scan(settings)
    # Then it completes on its first delivery, the odd listing walked past and counted
    assert outcomes == [Outcome.COMPLETED]
    done = row_of(session, scan_id)
    assert (done.status, done.processed_items, done.skipped_items) == ("completed", 2, 1)
    # And only the good find is stored, every stored id and title within its bound
    stored = session.scalars(select(ScanOpportunity)).all()
    assert [found.item_id for found in stored] == ["good"]
    for found in stored:
        assert len(found.item_id.encode()) <= bounds.ITEM_ID_MAX_BYTES
        assert len(found.title.encode()) <= bounds.TITLE_MAX_BYTES


@pytest.mark.parametrize(
    ("reply", "message"),
    [case[1:] for case in PAGE_BODIES],
    ids=[case[0] for case in PAGE_BODIES],
)
def test_a_hostile_page_fails_the_scan_on_its_first_delivery_keeping_the_last_cursor(
    env: dict[str, str],
    fake: FakeDMarket,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
    reply: ScriptedReply,
    message: str,
) -> None:
    # Given DMarket answers the second page with a hostile body
    fake.script(1, reply, path=ITEMS_PATH)
    settings = settings_for(env, fake, monkeypatch, "v1")
    # When the scan runs
    scan_id, outcomes = run_scan(settings)
    # Then the first page is kept and the scan fails at once, naming the defect: one
    # delivery, not a page handed back until it is called poison
    assert outcomes == [Outcome.NEXT_PUBLISHED, Outcome.FAILED]
    failed = row_of(session, scan_id)
    assert failed.status == "failed"
    assert message in (failed.error_message or "")
    assert (failed.processed_items, failed.page_deliveries) == (100, 1)
    # And the cursor kept is the first page's, within its bound
    assert failed.cursor == fake.requests_to(ITEMS_PATH)[1].query["cursor"]
    assert len((failed.cursor or "").encode()) <= bounds.CURSOR_MAX_BYTES


@pytest.mark.parametrize(
    ("kind", "body"),
    [case[1:] for case in REFERENCE_BODIES],
    ids=[case[0] for case in REFERENCE_BODIES],
)
def test_a_hostile_reference_answer_makes_the_page_wait_and_ask_again_and_it_completes(
    env: dict[str, str],
    session: Session,
    cache_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    body: bytes,
) -> None:
    # Given a v2 listing of 20, each title sold three times this week at its suggested
    # price, whose first lookup of the scan's reference DMarket answers with a hostile body
    listed = ITEMS[:20]
    sales = {item["title"]: [int(item["suggestedPrice"]["USD"])] * 3 for item in listed}
    with FakeDMarket(listed, sales=sales) as fake:
        fake.script(0, ScriptedReply(body=body), path=LOOKUP_PATHS[kind])
        settings = settings_for(env, fake, monkeypatch, "v2")
        # When the scan runs
        scan_id, outcomes = run_scan(settings, page_size=10, reference=kind)
        lookups = [request for request in fake.requests if request.path == LOOKUP_PATHS[kind]]
    # Then no page failed: the hostile lookup was asked again (one lookup more than a page
    # of best bids or a title of last sales needs; the other exit's lookups for the
    # candidates go to the other path) and every listing judged
    assert outcomes == [Outcome.NEXT_PUBLISHED, Outcome.COMPLETED]
    assert len(lookups) == {"best_bid": 2, "last_sales": 20}[kind] + 1
    done = row_of(session, scan_id)
    assert (done.status, done.processed_items) == ("completed", 20)
    found = set(session.scalars(select(ScanOpportunity.item_id)))
    assert found == {"dm-0000", "dm-0007", "dm-0014"}
