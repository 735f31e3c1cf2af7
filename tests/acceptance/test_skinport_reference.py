"""Real workers against the loopback DMarket v2 and the loopback Skinport: a scan with
`--reference skinport` stores exactly the finds an oracle computes from the two fakes'
data with the documented rule (Skinport's lowest listing less the 1-cent undercut, its
seller fee of 8 %, 6 % on a sale above $1,000, rounded up to a cent; the level's margin
plus the 5 % hold margin, plus the locked margin for a locked listing; at least 3 sales on
Skinport in 7 days), each with Skinport's price, fee and volume. The price list and its
sales history were fetched once for the whole fleet, every request asked for Brotli, and
Skinport never answered 406 or 429.

The oracle is written here from the documentation (docs/cli.md), in exact rationals, and
imports none of the code it checks.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from models import ScanOpportunity
from tests.fakes.dmarket_server import FakeDMarket, dmarket_item
from tests.support.processes import CeleryProcess
from tests.support.scans import start_scan_cli, wait_for_status
from worker import redis_keys
from worker.db import driver_url
from worker.testing.skinport_server import FakeSkinport, FakeSkinportItem

ITEMS_PATH, HISTORY_PATH = "/v1/items", "/v1/sales/history"
TITLES = 30
LISTINGS = 300
PAGE_SIZE = 10
# A level whose band reaches sales above $1,000, where Skinport's fee is 6 %.
LEVELS = "standard=100-500000:0.05"
MIN_PROFIT = Fraction(5, 100)
HOLD_MARGIN = Fraction(5, 100)  # the level's default
LOCKED_MARGIN = Fraction(5, 100)  # its default
MIN_VOLUME_7D = 3  # its default
UNDERCUT_CENTS = 1
SCAN_TIMEOUT_SECONDS = 180
SKINPORT_CODE, SKINPORT_FEE_CODE = 4, 4


def skinport_price(title: int) -> object:
    """A title's lowest listing on Skinport, in dollars as its API writes it: most in the
    tens of dollars, two above $1,000; every tenth+8 has nothing listed (null), and one
    price is not a number (skipped by the reader, so the title is unreferenced)."""
    if title % 10 == 8:
        return None
    if title == 5:
        return "12.50"
    if title in (10, 20):
        return float(Decimal(1_200 + 37 * title) + Decimal("0.99"))
    return float(Decimal(20 + title) + Decimal(title * 7 % 100) / 100)


def volume_of(title: int) -> int:
    """Sales on Skinport in the last 7 days: every tenth+7 sells too rarely."""
    return 2 if title % 10 == 7 else 4 + title


def skinport_items() -> list[FakeSkinportItem]:
    """Every title but each tenth+9, which Skinport does not list at all."""
    return [
        FakeSkinportItem(f"Title {t}", skinport_price(t), volume_7d=volume_of(t))
        for t in range(TITLES)
        if t % 10 != 9
    ]


def listed_cents(title: int) -> int:
    """What a DMarket listing of the title is priced from: Skinport's price in cents, or a
    price of the same size for a title Skinport does not price."""
    price = skinport_price(title)
    if isinstance(price, float):
        return int(Decimal(repr(price)) * 100)
    return 2_000 + 97 * title


FACTORS = tuple(Fraction(n, 100) for n in (70, 80, 82, 84, 86, 90, 110))


def listings() -> list[dict[str, Any]]:
    """300 listings of 30 titles at 70 % to 110 % of Skinport's price: around the margins
    with and without the hold, and around the 8 % and 6 % fees."""
    made = []
    for n in range(LISTINGS):
        title = n % TITLES
        price = math.floor(listed_cents(title) * FACTORS[(n // TITLES) % len(FACTORS)])
        made.append(dmarket_item(f"sp-{n:04d}", f"Title {title}", price))
    return made


LOCKED = {f"sp-{n:04d}": None for n in range(LISTINGS) if n % 7 == 0}


@dataclass(frozen=True)
class Expected:
    reference_price_cents: int
    fee_bps: int
    fee_cents: int
    profit_cents: int
    sales_7d: int
    locked: bool


def oracle(
    items: list[dict[str, Any]], hold_margin: Fraction = HOLD_MARGIN
) -> tuple[dict[str, Expected], int, int]:
    """(finds by offer id, illiquid candidates, unreferenced listings) per docs/cli.md."""
    found: dict[str, Expected] = {}
    illiquid = unreferenced = 0
    for item in items:
        title = int(item["title"].split()[-1])
        price = int(item["price"]["USD"])
        if not 100 <= price <= 500_000:
            continue
        listed = skinport_price(title)
        if title % 10 == 9 or not isinstance(listed, float):
            unreferenced += 1
            continue
        sale = int(Decimal(repr(listed)) * 100) - UNDERCUT_CENTS
        bps = 600 if sale > 100_000 else 800
        fee = math.ceil(Fraction(sale * bps, 10_000))
        locked = item["itemId"] in LOCKED
        margin = MIN_PROFIT + hold_margin + (LOCKED_MARGIN if locked else 0)
        profit = sale - fee - price
        if Fraction(profit, price) < margin:
            continue
        if volume_of(title) < MIN_VOLUME_7D:
            illiquid += 1
            continue
        found[item["itemId"]] = Expected(sale, bps, fee, profit, volume_of(title), locked)
    return found, illiquid, unreferenced


def stored(database_url: str, scan_id: uuid.UUID) -> dict[str, Expected]:
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        rows = session.scalars(select(ScanOpportunity).where(ScanOpportunity.scan_id == scan_id))
        found = {}
        for row in rows:
            assert (row.reference_kind, row.fee_source) == (SKINPORT_CODE, SKINPORT_FEE_CODE)
            assert row.sell_now_profit_cents is None  # Skinport has no buy orders
            assert row.reference_fetched_at is not None
            assert row.listing_profit_cents is not None and row.fee_bps is not None
            found[row.item_id] = Expected(
                row.reference_price_cents,
                row.fee_bps,
                row.reference_price_cents - row.price_cents - row.listing_profit_cents,
                row.listing_profit_cents,
                row.sales_7d if row.sales_7d is not None else -1,
                bool(row.locked),
            )
    engine.dispose()
    return found


@pytest.fixture
def clean_redis(celery_env: dict[str, str]) -> None:
    client = redis.Redis.from_url(celery_env["CELERY_BROKER_URL"])
    for prefix in (redis_keys.PRICE_LIST_PREFIX, redis_keys.BREAKER_PREFIX):
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
    client.close()


@pytest.fixture
def markets() -> Iterator[tuple[FakeDMarket, FakeSkinport]]:
    with FakeDMarket(listings(), locked=LOCKED) as dmarket, FakeSkinport(skinport_items()) as sp:
        yield dmarket, sp


def _aim_at(
    env: dict[str, str], dmarket: FakeDMarket, skinport: FakeSkinport, **settings: str
) -> None:
    """The fleet's settings: both fakes, DMarket's listing budget not the bottleneck, and a
    level reaching past $1,000."""
    env.update(
        MARKETSCAN_DMARKET_URL=dmarket.url,
        MARKETSCAN_DMARKET_REQUESTS_PER_SECOND="20",
        MARKETSCAN_SKINPORT_URL=skinport.url,
        MARKETSCAN_LEVELS=LEVELS,
        **settings,
    )


def _start_skinport_scan(env: dict[str, str]) -> uuid.UUID:
    return start_scan_cli(
        env, "--market", "dmarket", "--reference", "skinport", "--page-size", str(PAGE_SIZE)
    )


def test_a_skinport_scan_stores_exactly_the_oracles_finds_from_one_fetch_for_the_fleet(
    celery_env: dict[str, str],
    start_worker: Callable[..., CeleryProcess],
    clean_redis: None,
    markets: tuple[FakeDMarket, FakeSkinport],
    database_url: str,
) -> None:
    dmarket, skinport = markets
    # Given two workers of two processes each, the loopback DMarket v2 and Skinport (8
    # requests per 5 minutes, Brotli only), and a level reaching past $1,000
    _aim_at(celery_env, dmarket, skinport)
    for number in range(2):
        start_worker(f"skinport-{number}@fleet", concurrency=2)
    # When a scan judged against Skinport walks the listing
    scan_id = _start_skinport_scan(celery_env)
    done = wait_for_status(celery_env["DATABASE_URL"], scan_id, timeout=SCAN_TIMEOUT_SECONDS)
    assert (done.status, done.processed_items) == ("completed", LISTINGS)
    # Then its finds are exactly the oracle's, each with Skinport's price, fee and volume
    expected, illiquid, unreferenced = oracle(listings())
    found = stored(database_url, scan_id)
    assert found == expected
    # And the oracle's data reaches every branch of the rule: both fee bands, a locked
    # find, a listing that only the hold margin refuses, illiquid and unreferenced titles
    assert {row.fee_bps for row in found.values()} == {600, 800}
    assert any(row.locked for row in found.values())
    without_hold = set(oracle(listings(), hold_margin=Fraction(0))[0]) - set(expected)
    assert without_hold
    assert (done.illiquid_items, done.unreferenced_items) == (illiquid, unreferenced)
    assert illiquid > 0 and unreferenced > 0
    # And Skinport was asked once for the list and once for its history, for the whole
    # fleet, every request with Accept-Encoding: br: no 406, no 429
    assert len(skinport.requests_to(ITEMS_PATH)) == 1
    assert len(skinport.requests_to(HISTORY_PATH)) == 1
    assert all("br" in request.headers.get("accept-encoding", "") for request in skinport.requests)
    assert (skinport.count(406), skinport.count(429)) == (0, 0)


def test_a_skinport_that_is_down_is_waited_for_and_the_scan_ends_exact(
    celery_env: dict[str, str],
    start_worker: Callable[..., CeleryProcess],
    clean_redis: None,
    markets: tuple[FakeDMarket, FakeSkinport],
    database_url: str,
) -> None:
    dmarket, skinport = markets
    # Given Skinport answering its next 6 requests 503 (more than the page's retries would
    # bear, fewer than a real outage), its breaker opening after 2, cooling down 1 s, and a
    # budget of 8 requests per 2 s so the wait is short (the 8 requests made stay within
    # the fake's 8 per 5 minutes)
    _aim_at(
        celery_env,
        dmarket,
        skinport,
        MARKETSCAN_SKINPORT_REQUESTS_PER_WINDOW="8",
        MARKETSCAN_SKINPORT_WINDOW_SECONDS="2",
        MARKETSCAN_SKINPORT_BREAKER_FAILURES="2",
        MARKETSCAN_SKINPORT_BREAKER_COOLDOWN_SECONDS="1",
        MARKETSCAN_MAX_RETRIES="2",
        MARKETSCAN_RETRY_BACKOFF_SECONDS="0.2",
    )
    skinport.fail_next(6, 503, path=ITEMS_PATH)
    start_worker("skinport-down@fleet", concurrency=2)
    # When a scan judged against Skinport runs through the outage
    scan_id = _start_skinport_scan(celery_env)
    done = wait_for_status(
        celery_env["DATABASE_URL"], scan_id, ("completed", "failed"), SCAN_TIMEOUT_SECONDS
    )
    # Then it was waited for, never failed, and its finds are exactly the oracle's
    assert (done.status, done.error_message) == ("completed", None)
    assert stored(database_url, scan_id) == oracle(listings())[0]
    # And every one of the 6 failures was answered, then one whole list read for the fleet
    items = skinport.requests_to(ITEMS_PATH)
    assert [request.status for request in items][:6] == [503] * 6
    assert [request.status for request in items][6:] == [200]
    assert len(skinport.requests_to(HISTORY_PATH)) == 1
    # And DMarket's breaker was never opened by Skinport's outage
    client = redis.Redis.from_url(celery_env["CELERY_BROKER_URL"])
    assert not client.exists(f"{redis_keys.BREAKER_PREFIX}{dmarket.url}:open")
    client.close()
