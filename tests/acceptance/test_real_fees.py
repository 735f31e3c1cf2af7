"""Real workers against the loopback DMarket v2 with DMarket's published fees: a scan's
finds are exactly those an oracle computes from the fake's own data with the documented
rules (each title's reduced fee inside its band, the default elsewhere, never below the
minimum; the liquidity minimums; the last sales' outlier rule; the locked margin), each
with the fee, source, exits, sales and lock the oracle gives it; a reduced fee that
expires mid-scan is no longer used after its expiry; the fee list is fetched once for
the fleet (and again once its first reduction lapsed).

The oracle is written here from the documentation (docs/cli.md), in exact rationals, and
imports none of the code it checks.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pytest
import redis
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from models import ScanOpportunity
from tests.fakes.dmarket_server import FakeDMarket, FakeFees, FakeReducedFee, dmarket_item
from tests.support.processes import CeleryProcess
from tests.support.scans import start_scan_cli, wait_for_status
from worker import redis_keys
from worker.db import driver_url

FEES_PATH = "/exchange/v1/customized-fees"
OFFERS_PATH = "/marketplace-api/v2/offers"
DAY = 86_400
TITLES = 30
LISTINGS = 300
PAGE_SIZE = 10
MIN_PROFIT = Fraction(5, 100)  # the standard level's
LOCKED_MARGIN = Fraction(5, 100)  # its default
DEFAULT_FRACTION, MIN_AMOUNT = "0.05", 5
SCAN_TIMEOUT_SECONDS = 240
# The title whose reduced fee lapses while the scan runs, and how far into it.
EXPIRING_TITLE = "Title 3"
EXPIRES_AFTER_SECONDS = 12
# Around the expiry a page judged just before it commits just after: only finds committed
# this far from it are held to one side.
EXPIRY_SLACK_SECONDS = 2.0


def bid_of(title: int) -> tuple[int, int]:
    """A title's best bid and its buy orders: every tenth title has none standing."""
    return 2_000 + 97 * title, 0 if title % 10 == 9 else 1 + title % 3


def sales_of(title: int, now: int) -> list[tuple[int, int]]:
    """A title's last sales, newest first: most trade daily; every tenth last sold 40 days
    ago, every tenth+8 twice this week only; every fifth has an outlier at ten times."""
    bid, _ = bid_of(title)
    if title % 10 == 7:
        return [(bid, now - 40 * DAY - hour * 3600) for hour in range(6)]
    if title % 10 == 8:
        return [(bid, now - DAY), (bid + 40, now - 2 * DAY)]
    if title % 5 == 0:  # four sales and one at ten times: the outlier moves the median
        sales = [(bid + 60 * (k % 3) - 50, now - 3600 * (6 * k + 1)) for k in range(4)]
        sales.insert(2, (bid * 10, now - 7200))
        return sales
    return [(bid + 60 * (k % 3) - 50, now - 3600 * (6 * k + 1)) for k in range(8)]


def reduced_fees(now: int) -> tuple[FakeReducedFee, ...]:
    """Titles with a lower fee inside a band: every fourth over its bids, every fourth+1
    over a band its bids never reach, and one that lapses mid-scan (4.5 % against the
    default 5 %: it changes each find's fee, not which listings are finds)."""
    reduced = []
    for title in range(TITLES):
        bid, _ = bid_of(title)
        if title % 4 == 0:
            reduced.append(
                FakeReducedFee(f"Title {title}", "0.02", bid - 300, bid + 300, now + DAY)
            )
        elif title % 4 == 1:
            reduced.append(FakeReducedFee(f"Title {title}", "0.01", 50_000, 90_000, now + DAY))
    reduced.append(
        FakeReducedFee(EXPIRING_TITLE, "0.045", 0, 1_000_000, now + EXPIRES_AFTER_SECONDS)
    )
    return tuple(reduced)


def listings() -> list[dict[str, Any]]:
    """300 listings of 30 titles, each title's ten priced from 70 % to 110 % of its bid."""
    factors = (Fraction(70, 100), Fraction(84, 100), Fraction(88, 100), Fraction(92, 100),
               Fraction(95, 100), Fraction(110, 100))  # fmt: skip
    made = []
    for n in range(LISTINGS):
        title = n % TITLES
        price = math.floor(bid_of(title)[0] * factors[(n // TITLES) % len(factors)])
        made.append(dmarket_item(f"fee-{n:04d}", f"Title {title}", price))
    return made


LOCKED = {f"fee-{n:04d}": None for n in range(LISTINGS) if n % 7 == 0}


@dataclass(frozen=True)
class Expected:
    fee_bps: int
    fee_source: str
    sell_now_profit_cents: int
    listing_profit_cents: int | None
    sales_7d: int
    locked: bool


def fee(
    title: str, sale: int, judged_at: float, reduced: tuple[FakeReducedFee, ...]
) -> tuple[int, str, int]:
    """(basis points, source, cents) of the fee a sale pays, as docs/cli.md says."""
    bps, source = round(Fraction(DEFAULT_FRACTION) * 10_000), "default"
    applying = [
        round(Fraction(one.fraction) * 10_000)
        for one in reduced
        if one.title == title
        and one.min_price_cents <= sale <= one.max_price_cents
        and judged_at < one.expires_at
    ]
    if applying:
        bps, source = max(applying), "reduced"
    return bps, source, max(math.ceil(Fraction(sale * bps, 10_000)), MIN_AMOUNT)


def median(prices: list[int]) -> int:
    ordered = sorted(prices)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) // 2


def last_sales_reference(sales: list[tuple[int, int]]) -> int:
    """The median of the sales kept after the outlier rule: within [m/2, 2m] of the median
    m of all of them."""
    everything = median([price for price, _ in sales])
    kept = [price for price, _ in sales if Fraction(everything, 2) <= price <= 2 * everything]
    return median(kept)


def oracle(
    items: list[dict[str, Any]], now: int, judged_at: float, reduced: tuple[FakeReducedFee, ...]
) -> dict[str, Expected]:
    """What the scan must store, by offer id, if every page is judged at `judged_at`."""
    found = {}
    for item in items:
        title_number = int(item["title"].split()[-1])
        price = int(item["price"]["USD"])
        bid, orders = bid_of(title_number)
        locked = item["itemId"] in LOCKED
        if not 100 <= price <= 10_000:
            continue
        bps, source, fee_cents = fee(item["title"], bid, judged_at, reduced)
        margin = MIN_PROFIT + (LOCKED_MARGIN if locked else 0)
        sell_now = bid - fee_cents - price
        if sell_now < margin * price:
            continue
        sales = sales_of(title_number, now)
        recent = [sold for _, sold in sales if sold >= now - 7 * DAY]
        newest = max(sold for _, sold in sales)
        if len(recent) < 3 or newest < now - 3 * DAY or orders < 1:
            continue
        listed = last_sales_reference(sales)
        listing = listed - fee(item["title"], listed, judged_at, reduced)[2] - price
        found[item["itemId"]] = Expected(bps, source, sell_now, listing, len(recent), locked)
    return found


def stored(database_url: str, scan_id: uuid.UUID) -> dict[str, tuple[Expected, float]]:
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        rows = session.scalars(select(ScanOpportunity).where(ScanOpportunity.scan_id == scan_id))
        sources = {1: "reduced", 2: "default", 3: "configured"}
        found = {
            row.item_id: (
                Expected(
                    row.fee_bps or -1,
                    sources.get(row.fee_source or 0, "?"),
                    row.sell_now_profit_cents if row.sell_now_profit_cents is not None else -1,
                    row.listing_profit_cents,
                    row.sales_7d if row.sales_7d is not None else -1,
                    bool(row.locked),
                ),
                row.found_at.timestamp(),
            )
            for row in rows
        }
    engine.dispose()
    return found


@pytest.fixture
def clean_redis(celery_env: dict[str, str]) -> None:
    client = redis.Redis.from_url(celery_env["CELERY_BROKER_URL"])
    for prefix in (redis_keys.REFERENCE_PREFIX, redis_keys.BREAKER_PREFIX, "marketscan:fee:"):
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
    client.close()


@pytest.fixture
def market() -> Iterator[tuple[FakeDMarket, int]]:
    now = int(time.time())
    titles = [f"Title {t}" for t in range(TITLES)]
    with FakeDMarket(
        listings(),
        best_bids={title: bid_of(t) for t, title in enumerate(titles)},
        sales={title: sales_of(t, now) for t, title in enumerate(titles)},
        locked=LOCKED,
    ) as fake:
        yield fake, now


def test_finds_are_what_the_published_fees_liquidity_outliers_and_locks_make_them(
    celery_env: dict[str, str],
    start_worker: Callable[..., CeleryProcess],
    clean_redis: None,
    market: tuple[FakeDMarket, int],
    database_url: str,
) -> None:
    fake, now = market
    # Given two workers of two processes each, a listing budget that makes the scan span
    # the expiry of one title's reduced fee, and DMarket's published fees (no MARKETSCAN_FEE)
    celery_env.pop("MARKETSCAN_FEE", None)
    celery_env.update(
        MARKETSCAN_DMARKET_URL=fake.url,
        MARKETSCAN_DMARKET_REQUESTS_PER_SECOND="1.5",
        MARKETSCAN_DMARKET_OTHER_REQUESTS_PER_SECOND="50",
        MARKETSCAN_DMARKET_LAST_SALES_REQUESTS_PER_SECOND="50",
    )
    for number in range(2):
        start_worker(f"fees-{number}@fleet", concurrency=2)
    # When a best-bid scan walks the listing, while DMarket publishes its fees with one
    # reduction lapsing some seconds into the scan
    started = int(time.time())
    fake.set_fees(FakeFees(DEFAULT_FRACTION, MIN_AMOUNT, reduced_fees(started)))
    scan_id = start_scan_cli(celery_env, "--market", "dmarket", "--page-size", str(PAGE_SIZE))
    done = wait_for_status(celery_env["DATABASE_URL"], scan_id, timeout=SCAN_TIMEOUT_SECONDS)
    assert (done.status, done.processed_items) == ("completed", LISTINGS)
    found = stored(database_url, scan_id)
    reduced = fake.fees.reduced
    expires_at = started + EXPIRES_AFTER_SECONDS
    # Then every find is the oracle's, with its fee, source, exits, sales and lock: judged
    # by the fee of its moment on either side of the lapse of the expiring reduction
    before = oracle(listings(), now, expires_at - 1, reduced)
    after = oracle(listings(), now, expires_at + 1, reduced)
    assert set(before) == set(after)  # the lapse changes fees, not which listings are finds
    assert before != after
    assert set(found) == set(before) and found
    expiring_seen = {"reduced": 0, "default": 0}
    for item_id, (row, committed_at) in found.items():
        wanted = before[item_id] if committed_at < expires_at else after[item_id]
        near_lapse = abs(committed_at - expires_at) < EXPIRY_SLACK_SECONDS
        if near_lapse and row in (before[item_id], after[item_id]):
            continue
        assert row == wanted, item_id
        if item_id in before and f"Title {int(item_id[4:]) % TITLES}" == EXPIRING_TITLE:
            expiring_seen[row.fee_source] += 1
    # And the expiring title was judged with its reduced fee before the lapse, the default after
    assert expiring_seen["reduced"] > 0 and expiring_seen["default"] > 0, expiring_seen
    # And the illiquid candidates were counted, not stored; locked ones needed the margin more
    assert done.illiquid_items > 0
    assert any(row.locked for row, _ in found.values())
    assert {row.fee_source for row, _ in found.values()} == {"reduced", "default"}
    # And the fee list was fetched once for the fleet, and once more after its first lapse
    fee_requests = fake.requests_to(FEES_PATH)
    pages = math.ceil(len(reduced) / 100) or 1
    assert len(fee_requests) == 2 * pages, [request.query for request in fee_requests]
