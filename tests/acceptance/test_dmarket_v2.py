"""Real workers against the loopback DMarket speaking v2: the opportunities a scan stores
against the best bid (after DMarket's published fee, titles that trade), one lookup per
title for a whole fleet, both budgets held at once, quirks that end a walk, and a 2-minute
outage ridden out by the circuit breaker.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from fractions import Fraction

import pytest
import redis

from tests.fakes.dmarket_server import FakeDMarket, Quirk, dmarket_item, requests_over_rate
from tests.support.processes import CeleryProcess
from tests.support.scans import row as scan_row
from tests.support.scans import start_scan_cli, wait_for_progress, wait_for_status
from worker import redis_keys
from worker.markets.fleet import breaker

OFFERS = "/marketplace-api/v2/offers"
AGGREGATED = "/marketplace-api/v1/aggregated-prices"
LAST_SALES = "/trade-aggregator/v1/last-sales"
FEES = "/exchange/v1/customized-fees"
PAGE_SIZE = 20
MIN_PROFIT = Fraction(5, 100)  # the standard level's
MIN_SALES_7D = 3  # the standard level's liquidity minimums: sales this week, buy orders
MIN_BUY_ORDERS = 1
# 200 listings of 50 titles: each title is listed on several pages.
ITEMS = [dmarket_item(f"v2-{n:04d}", f"Title {n % 50}", 1000 + 7 * n) for n in range(200)]
# A bid for 40 of the 50 titles, some above a listing's price by the margin, most not.
BIDS = {f"Title {t}": (1100 + 23 * t, 1 + t % 4) for t in range(40)}
# The same titles' bids where only every tenth title's are over a listing by the margin:
# 4 candidates in the 200 listings (v2-0010, -0020, -0030, -0080), every page looked up.
FEW_CANDIDATES_BIDS = {
    title: (bid, orders) if int(title.split()[-1]) % 10 == 0 else (900, orders)
    for title, (bid, orders) in BIDS.items()
}
# Each title with a bid sold three times at it just now (the fake dates sales given by
# price alone at the moment they are asked for): liquid, so its candidates are finds.
SALES = {title: [bid] * MIN_SALES_7D for title, (bid, _) in BIDS.items()}
SCAN_TIMEOUT_SECONDS = 180
OUTAGE_SECONDS = 120
COOLDOWN_SECONDS = 2


def published_fee_cents(fake: FakeDMarket, sale_cents: int) -> int:
    """The fee DMarket publishes for a sale (no title of this listing has a reduced one):
    the default fraction of the price rounded up to a cent, at least the minimum amount."""
    fees = fake.fees
    assert fees.reduced == ()
    return max(math.ceil(Fraction(fees.fraction) * sale_cents), fees.min_amount_cents)


def walked_opportunities(fake: FakeDMarket) -> set[str]:
    """A database-free walk of the fake's own data: the listings that selling at once into
    the best bid, less the fee that sale pays, leaves the margin, of titles that trade."""
    found = set()
    for item in fake.listing():
        bid = BIDS.get(item["title"])
        price = int(item["price"]["USD"])
        if bid is None or bid[0] - published_fee_cents(fake, bid[0]) - price < MIN_PROFIT * price:
            continue
        if len(SALES.get(item["title"], ())) >= MIN_SALES_7D and bid[1] >= MIN_BUY_ORDERS:
            found.add(item["itemId"])
    return found


@pytest.fixture
def clean_redis(celery_env: dict[str, str]) -> None:
    client = redis.Redis.from_url(celery_env["CELERY_BROKER_URL"])
    for prefix in (redis_keys.REFERENCE_PREFIX, redis_keys.BREAKER_PREFIX):
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
    client.close()


@pytest.fixture
def fleet(
    celery_env: dict[str, str], start_worker: Callable[..., CeleryProcess], clean_redis: None
) -> Callable[..., dict[str, str]]:
    """Start `workers` workers of concurrency 2 against `fake`; returns their environment."""

    def start(fake: FakeDMarket, workers: int = 1, **variables: str) -> dict[str, str]:
        celery_env["MARKETSCAN_DMARKET_URL"] = fake.url
        # The finds are reckoned with the fee the fake publishes, not a configured one.
        celery_env.pop("MARKETSCAN_FEE", None)
        celery_env.update(variables)
        for number in range(workers):
            start_worker(f"v2-{number}@fleet", concurrency=2)
        return celery_env

    return start


def start_scans(env: dict[str, str], count: int) -> list[uuid.UUID]:
    return [
        start_scan_cli(env, "--market", "dmarket", "--page-size", str(PAGE_SIZE))
        for _ in range(count)
    ]


def stored_item_ids(database_url: str, scan_id: uuid.UUID) -> set[str]:
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from models import ScanOpportunity
    from worker.db import driver_url

    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        found = set(
            session.scalars(
                select(ScanOpportunity.item_id).where(ScanOpportunity.scan_id == scan_id)
            )
        )
    engine.dispose()
    return found


@pytest.fixture
def fake() -> Iterator[FakeDMarket]:
    with FakeDMarket(ITEMS, best_bids=BIDS, sales=SALES) as server:
        yield server


def test_a_scans_opportunities_are_exactly_the_listings_under_the_best_bid(
    fleet: Callable[..., dict[str, str]], fake: FakeDMarket, database_url: str
) -> None:
    env = fleet(fake, MARKETSCAN_DMARKET_REQUESTS_PER_SECOND="50",
                MARKETSCAN_DMARKET_OTHER_REQUESTS_PER_SECOND="50")  # fmt: skip
    (scan_id,) = start_scans(env, 1)
    done = wait_for_status(database_url, scan_id, timeout=SCAN_TIMEOUT_SECONDS)
    assert (done.status, done.processed_items, done.unreferenced_items) == ("completed", 200, 40)
    # (every title with a bid trades, so no candidate was left out as illiquid)
    assert done.illiquid_items == 0
    expected = walked_opportunities(fake)
    assert 0 < len(expected) < 160
    assert stored_item_ids(database_url, scan_id) == expected


def test_four_processes_look_each_title_up_once_per_ttl(
    fleet: Callable[..., dict[str, str]],
    start_worker: Callable[..., CeleryProcess],
    fake: FakeDMarket,
    database_url: str,
) -> None:
    # Given 4 scans of the same listing queued, then 2 workers x 2 processes started, so
    # that all four first pages look up the same titles at the same moment
    env = fleet(fake, workers=0, MARKETSCAN_DMARKET_REQUESTS_PER_SECOND="50",
                MARKETSCAN_DMARKET_OTHER_REQUESTS_PER_SECOND="50")  # fmt: skip
    scan_ids = start_scans(env, 4)
    for hostname in ("ttl-1@fleet", "ttl-2@fleet"):
        start_worker(hostname, concurrency=2)
    done = [wait_for_status(database_url, s, timeout=SCAN_TIMEOUT_SECONDS) for s in scan_ids]
    assert [row.status for row in done] == ["completed"] * 4
    # Then every title went to DMarket in one lookup, once, for the whole fleet
    asked = Counter(
        title
        for request in fake.requests
        if request.path == AGGREGATED
        for title in json.loads(request.body)["filter"]["titles"]
    )
    assert set(asked) == {f"Title {t}" for t in range(50)}
    assert set(asked.values()) == {1}
    # And so did each candidate's title for its last sales (the liquidity lookup), and the
    # fee list, once for the fleet
    found = walked_opportunities(fake)
    titles_found = {item["title"] for item in fake.listing() if item["itemId"] in found}
    sales_asked = Counter(request.query["title"] for request in fake.requests_to(LAST_SALES))
    assert set(sales_asked) == titles_found
    assert set(sales_asked.values()) == {1}
    assert len(fake.requests_to(FEES)) == 1
    for scan_id in scan_ids:
        assert stored_item_ids(database_url, scan_id) == found


def test_both_budgets_hold_at_once_and_the_items_budget_is_used(
    fleet: Callable[..., dict[str, str]], database_url: str
) -> None:
    # Given a DMarket enforcing DMarket's unsigned budgets: items 2/s, other methods 6/s
    # (best bids, and the candidates' last sales: unsigned, they are other methods too),
    # a handful of candidates as on a real market (each costs a last-sales lookup of its
    # own), and short TTLs so lookups keep coming
    budgets = {"market_items": 2, "other": 6}
    with FakeDMarket(
        ITEMS, best_bids=FEW_CANDIDATES_BIDS, sales=SALES, class_budgets=budgets
    ) as fake:
        env = fleet(fake, workers=2, MARKETSCAN_REFERENCE_TTL_SECONDS="1")
        scan_ids = start_scans(env, 2)
        done = [wait_for_status(database_url, s, timeout=SCAN_TIMEOUT_SECONDS) for s in scan_ids]
        requests = fake.requests
    assert [row.status for row in done] == ["completed"] * 2
    pages = [r.received_at for r in requests if r.path == OFFERS]
    lookups = [r.received_at for r in requests if r.path in (AGGREGATED, LAST_SALES)]
    assert {r.path for r in requests if r.path in (AGGREGATED, LAST_SALES)} == {
        AGGREGATED,
        LAST_SALES,
    }
    # Then no second held more than either budget, and DMarket refused nothing
    assert [r for r in requests if r.status == 429] == []
    assert requests_over_rate(pages, 2) == 0
    assert requests_over_rate(lookups, 6) == 0
    # And the market-items budget was used to at least 90 %
    used = (len(pages) - 1) / (pages[-1] - pages[0])
    assert used >= 0.9 * 2, used


@pytest.mark.parametrize(
    ("quirk", "note"),
    [
        (Quirk("repeating_cursor", 60), "DMarket sent back the cursor it was asked for"),
        (Quirk("empty_pages", 60), "DMarket sent 3 empty pages in a row"),
    ],
)
def test_a_repeating_cursor_or_three_empty_pages_end_a_scan(
    fleet: Callable[..., dict[str, str]], database_url: str, quirk: Quirk, note: str
) -> None:
    with FakeDMarket(ITEMS, best_bids=BIDS, sales=SALES, quirk=quirk) as fake:
        env = fleet(fake, MARKETSCAN_DMARKET_REQUESTS_PER_SECOND="50",
                    MARKETSCAN_DMARKET_OTHER_REQUESTS_PER_SECOND="50")  # fmt: skip
        (scan_id,) = start_scans(env, 1)
        done = wait_for_status(database_url, scan_id, timeout=60)
    assert done.status == "completed"
    assert done.note is not None and note in done.note
    assert done.processed_items == (80 if quirk.kind == "repeating_cursor" else 60)


def test_an_outage_ends_with_every_scan_completed_exactly_and_none_failed(
    fleet: Callable[..., dict[str, str]],
    start_worker: Callable[..., CeleryProcess],
    start_beat: Callable[[], CeleryProcess],
    fake: FakeDMarket,
    database_url: str,
) -> None:
    # Given 3 scans of 10 pages queued, then 4 processes and a beat recovering every second
    # (leases of 4 s) started, so that the scans run side by side
    env = fleet(
        fake,
        workers=0,
        MARKETSCAN_DMARKET_REQUESTS_PER_SECOND="4",
        MARKETSCAN_DMARKET_BREAKER_FAILURES="3",
        MARKETSCAN_DMARKET_BREAKER_COOLDOWN_SECONDS=str(COOLDOWN_SECONDS),
        MARKETSCAN_MAX_RETRIES="3",
    )
    scan_ids = start_scans(env, 3)
    start_beat()
    for hostname in ("outage-1@fleet", "outage-2@fleet"):
        start_worker(hostname, concurrency=2)
    # When DMarket goes down for 2 minutes once every scan has committed a page
    for scan_id in scan_ids:
        wait_for_progress(database_url, scan_id, PAGE_SIZE)
    fake.outage(OUTAGE_SECONDS)
    # Then the breaker opens and stays open, from one moment, through the outage, every scan
    # waiting in progress meanwhile
    opened = _watch_the_outage(env, fake, database_url, scan_ids, OUTAGE_SECONDS - 3)
    done = [wait_for_status(database_url, s, ("completed", "failed"), timeout=SCAN_TIMEOUT_SECONDS)
            for s in scan_ids]  # fmt: skip
    # And every scan completed exactly, none failed, none was recovered for waiting, and no
    # lookup the outage refused left a candidate of a title that trades judged illiquid
    assert [
        (row.status, row.processed_items, row.recoveries, row.illiquid_items) for row in done
    ] == [("completed", 200, 0, 0)] * 3
    for scan_id in scan_ids:
        assert stored_item_ids(database_url, scan_id) == walked_opportunities(fake)
    # And while it was down the fleet sent about one probe per cool-down, not a flood
    refused = [r for r in fake.requests if r.status == 503]
    assert 3 <= len(refused) <= 3 + OUTAGE_SECONDS / COOLDOWN_SECONDS + 4, len(refused)
    print(f"\nbreaker open since {opened.since:%H:%M:%S}; {len(refused)} requests refused")


def _watch_the_outage(
    env: dict[str, str],
    fake: FakeDMarket,
    database_url: str,
    scan_ids: list[uuid.UUID],
    seconds: float,
) -> breaker.BreakerState:
    """The breaker's state, checked every second for `seconds`: open from one `since` on."""
    client = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    deadline = time.monotonic() + seconds
    opened = None
    try:
        while time.monotonic() < deadline:
            state = breaker.breaker_state(client, fake.url)
            if opened is None:
                opened = state
            else:
                assert state == opened, f"the breaker closed or reopened mid-outage: {state}"
            statuses = [scan_row(database_url, scan_id).status for scan_id in scan_ids]
            assert statuses == ["in_progress"] * len(scan_ids), statuses
            time.sleep(1)
    finally:
        client.close()
    assert opened is not None, "the breaker never opened"
    return opened
