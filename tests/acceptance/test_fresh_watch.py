"""Fresh watches on real workers and beat against the live loopback DMarket: every listing
created after the watch began is judged exactly once through a worker SIGKILL, a beat
SIGKILL and a flushed broker, its finds are the oracle's and are alerted; five watches
cost the requests of one; a fresh watch keeps polling on its interval while full scans
hold the same request budget.

The live listing's clock can be stopped: from then on nothing is listed and no late
listing turns visible, so the listing the last polls read is exactly the oracle's, with no
race between a poll's read and the test's count.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pytest
import redis
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity, WatchPass
from tests.support.processes import CeleryProcess
from tests.support.scans import cli
from tests.support.scans import row as scan_row
from worker import client
from worker.db import driver_url
from worker.domain.scan_params import ScanParams
from worker.domain.watermark import Watermark
from worker.settings import get_settings
from worker.testing.dmarket_live import LiveListing
from worker.testing.dmarket_server import FakeDMarket, ScriptedReply, dmarket_item
from worker.testing.telegram_server import FakeTelegram

OFFERS = "/marketplace-api/v2/offers"
EVERY_SECONDS = 2
# `wide` covers every price the live listing makes (its best bids are $2-$200, listings
# at 55-130 % of them), so a reprice never moves a listing out of a watch's band.
LEVELS = "standard=100-10000:0.05,wide=1-100000:0.04"
WIDE = (1, 100_000)
OWNER = 4242
CHAT = 777_000_222
POLL_TIMEOUT_SECONDS = 60
# Sales the loopback DMarket reports for each live title (the levels ask for 3 this week).
SALES_PER_TITLE = 5


class StoppableClock:
    """The live listing's clock: the wall clock until `stop()`, then that moment for good."""

    def __init__(self) -> None:
        self.stopped_at = math.inf

    def __call__(self) -> float:
        return min(time.time(), self.stopped_at)

    def stop(self) -> float:
        self.stopped_at = time.time()
        return self.stopped_at


@dataclass(frozen=True)
class Oracle:
    """What a fresh scan should have judged and found, by the live listing's record."""

    judged: frozenset[str]
    underpriced: frozenset[str]


def oracle(live: LiveListing, floor_second: int, until: float, band: tuple[int, int]) -> Oracle:
    """Listings created from the watch's second on, visible by `until`, priced in `band`
    (at creation and after any reprice: the tests' bands never split a listing's prices)."""
    low, high = band
    judged = [
        offer
        for offer in live.listings(until)
        if offer.created_second >= floor_second
        and offer.visible_at <= until
        and low <= offer.price_cents <= high
        and (offer.repriced_cents is None or low <= offer.repriced_cents <= high)
    ]
    return Oracle(
        frozenset(offer.offer_id for offer in judged),
        frozenset(offer.offer_id for offer in judged if offer.underpriced),
    )


def recent_sales(live: LiveListing) -> dict[str, list[int]]:
    """Each live title's last sales, at its best bid: recent and many enough for every
    level's liquidity minimums, so a find is any listing under the bid by the margin."""
    return {title: [cents] * SALES_PER_TITLE for title, (cents, _) in live.best_bids().items()}


@pytest.fixture
def clock() -> StoppableClock:
    return StoppableClock()


@pytest.fixture
def configure(
    celery_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., dict[str, str]]:
    """Set variables for the processes to start and for this one (the client checks a
    watch's level and market against its own settings)."""

    def apply(**variables: str) -> dict[str, str]:
        for name, value in variables.items():
            celery_env[name] = value
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        return celery_env

    apply(
        MARKETSCAN_LEVELS=LEVELS,
        MARKETSCAN_DMARKET_API="v2",
        MARKETSCAN_WATCH_TICK_SECONDS="0.3",
        MARKETSCAN_FRESH_TICK_SECONDS="0.2",
    )
    return apply


def _query(database_url: str, statement: object) -> list[object]:
    engine = create_engine(driver_url(database_url))
    try:
        with Session(engine) as session:
            return list(session.scalars(statement))  # type: ignore[call-overload]
    finally:
        engine.dispose()


def scan_of(database_url: str, watch_id: uuid.UUID) -> uuid.UUID:
    """The fresh watch's one scan, once the watch clock started it (its row stored)."""
    deadline = time.monotonic() + POLL_TIMEOUT_SECONDS
    while True:
        scans = _query(
            database_url,
            select(WatchPass.scan_id)
            .join(ScanCheckpoint, ScanCheckpoint.scan_id == WatchPass.scan_id)
            .where(WatchPass.watch_id == watch_id),
        )
        if scans:
            assert len(scans) == 1, f"a fresh watch has one scan, got {scans}"
            scan_id = scans[0]
            assert isinstance(scan_id, uuid.UUID)
            return scan_id
        assert time.monotonic() < deadline, "the watch clock started no scan"
        time.sleep(0.1)


def finds_of(database_url: str, scan_id: uuid.UUID) -> Counter[str]:
    """Each stored find's offer id, with how many rows hold it."""
    found = _query(
        database_url, select(ScanOpportunity.item_id).where(ScanOpportunity.scan_id == scan_id)
    )
    return Counter(str(item_id) for item_id in found)


def watermark_of(database_url: str, scan_id: uuid.UUID) -> tuple[int, Watermark | None]:
    """The scan's polls so far and the watermark its last poll committed."""
    row = scan_row(database_url, scan_id)
    assert row.status == "in_progress", (row.status, row.error_message)
    return row.page_seq, None if row.cursor is None else Watermark.from_cursor(row.cursor)


def wait_for_polls_after(
    database_url: str, scan_ids: list[uuid.UUID], moment: float, polls: int = 2
) -> None:
    """Until each scan committed `polls` polls that read the market after `moment`."""
    for scan_id in scan_ids:
        deadline = time.monotonic() + POLL_TIMEOUT_SECONDS
        first: int | None = None
        while True:
            page_seq, watermark = watermark_of(database_url, scan_id)
            if first is None and watermark is not None and watermark.as_of > moment:
                first = page_seq
            if first is not None and page_seq >= first + polls - 1:
                break
            assert time.monotonic() < deadline, f"scan {scan_id} stopped polling at {page_seq}"
            time.sleep(0.1)


def add_fresh_watch(level: str = "wide", **band: int) -> uuid.UUID:
    watch = client.add_watch(
        "csgo",
        owner_id=OWNER,
        chat_id=CHAT,
        every_seconds=EVERY_SECONDS,
        level=level,
        market="dmarket",
        fresh=True,
        **band,  # type: ignore[arg-type]
    )
    return watch.watch_id


def floor_of(database_url: str, scan_id: uuid.UUID) -> int:
    """The second the watch began, as its scan froze it (nothing before it is judged)."""
    row = scan_row(database_url, scan_id)
    params = ScanParams.from_json(row.params)
    assert params.fresh and params.reference == "best_bid", params
    assert params.fresh_since is not None
    _, watermark = watermark_of(database_url, scan_id)
    assert watermark is not None
    assert watermark.floor == math.floor(datetime.fromisoformat(params.fresh_since).timestamp())
    return watermark.floor


def _flush_broker(env: dict[str, str]) -> None:
    broker = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    broker.flushall()
    broker.close()


def _at_next_poll(database_url: str, scan_id: uuid.UUID) -> None:
    """Sleep until just after the scan's next poll falls due: a kill then hits it queued
    or running, not resting."""
    deadline = time.monotonic() + POLL_TIMEOUT_SECONDS
    while (due := scan_row(database_url, scan_id).next_poll_at) is None:
        assert time.monotonic() < deadline, "the scan never rested"
        time.sleep(0.02)
    time.sleep(max(0.0, due.timestamp() - time.time()) + 0.1)


def _alerted(telegram: FakeTelegram, offer_ids: frozenset[str]) -> Counter[str]:
    """How many delivered messages name each offer id (in its listing link)."""
    counted: Counter[str] = Counter()
    for call in telegram.calls_of("sendMessage"):
        if call.status == 200:
            counted.update(offer_id for offer_id in offer_ids if offer_id in call.text)
    return counted


def _hold_next_walk(fake: FakeDMarket, seconds: float) -> int:
    """Answer the next two offers requests `seconds` late; the number of the first. Two, in
    case one arrives between the count and the script: whichever of them comes first after
    it holds its poll in flight."""
    number = len(fake.requests_to(OFFERS))
    for late in (number, number + 1):
        fake.script(late, ScriptedReply(delay_seconds=seconds), path=OFFERS)
    return number


def _in_flight(fake: FakeDMarket, number: int) -> None:
    """Until offers request `number` arrived (and is being held), plus a moment."""
    deadline = time.monotonic() + POLL_TIMEOUT_SECONDS
    while len(fake.requests_to(OFFERS)) <= number:
        assert time.monotonic() < deadline, "no poll asked DMarket"
        time.sleep(0.01)
    time.sleep(0.2)


def test_a_fresh_watch_judges_each_new_listing_once_across_kills_and_a_flushed_broker(
    configure: Callable[..., dict[str, str]],
    database_url: str,
    telegram: FakeTelegram,
    clock: StoppableClock,
    start_worker: Callable[..., CeleryProcess],
    start_beat: Callable[[], CeleryProcess],
) -> None:
    # Given a live listing of 5 offers a second, a tenth underpriced, a tenth seen 1-4 s
    # late, some repriced (none sold: one sold before any poll could see it has nothing to
    # judge, and a poll redone after a kill may come after the sale)
    live = LiveListing(5.0, seed=20261207, sold_share=0.0, clock=clock)
    with FakeDMarket([], live=live, sales=recent_sales(live)) as fake:
        env = configure(
            MARKETSCAN_DMARKET_URL=fake.url,
            MARKETSCAN_DMARKET_REQUESTS_PER_SECOND="20",
            MARKETSCAN_DMARKET_OTHER_REQUESTS_PER_SECOND="20",
            MARKETSCAN_TELEGRAM_BOT_TOKEN=telegram.token,
            MARKETSCAN_TELEGRAM_API_URL=telegram.api_url,
            MARKETSCAN_ALERT_TOP="20",
        )
        first_worker = start_worker("fresh-1@test", concurrency=2)
        beat = start_beat()
        # When a fresh watch every 2 s, added with the CLI, follows it for a minute
        added = cli(
            ["watch", "add", "--game", "csgo", "--market", "dmarket", "--fresh", "--every",
             f"{EVERY_SECONDS}s", "--owner-id", str(OWNER), "--chat-id", str(CHAT),
             "--level", "wide", "--json"],
            env,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        scan_id = scan_of(database_url, uuid.UUID(json.loads(added.stdout)["watch_id"]))
        began = time.time()
        # ... a worker is SIGKILLed while its poll waits for DMarket, and another started
        time.sleep(10)
        _in_flight(fake, _hold_next_walk(fake, 3.0))
        first_worker.kill_group()
        start_worker("fresh-2@test", concurrency=2)
        # ... beat is SIGKILLed as a poll falls due, and started again
        time.sleep(10)
        _at_next_poll(database_url, scan_id)
        beat.kill_group()
        start_beat()
        # ... the broker's Redis forgets everything while a poll waits for DMarket
        time.sleep(10)
        _in_flight(fake, _hold_next_walk(fake, 1.0))
        _flush_broker(env)
        time.sleep(20)
        # ... then nothing more is listed, and the watch polls twice more
        stopped_at = clock.stop()
        wait_for_polls_after(database_url, [scan_id], stopped_at)
        expected = oracle(live, floor_of(database_url, scan_id), stopped_at, WIDE)
        done = scan_row(database_url, scan_id)
        found = finds_of(database_url, scan_id)
        # Then every listing created from the watch's second on was judged exactly once
        judged = len(expected.judged)
        assert done.processed_items == judged, f"{done.processed_items} judged, not {judged}"
        assert Watermark.from_cursor(done.cursor or "").gaps == 0
        late = [offer for offer in live.listings(stopped_at) if offer.offer_id in expected.judged]
        assert any(offer.late for offer in late) and any(offer.repriced_at for offer in late)
        # And the killed worker's poll was recovered and redone, not lost
        assert done.recoveries >= 1
        # And its finds are exactly the underpriced ones, each stored once
        assert set(found) == expected.underpriced and expected.underpriced
        assert set(found.values()) == {1}
        # And every find was alerted at least once
        deadline = time.monotonic() + POLL_TIMEOUT_SECONDS
        while missing := expected.underpriced - set(_alerted(telegram, expected.underpriced)):
            assert time.monotonic() < deadline, f"never alerted: {sorted(missing)}"
            time.sleep(0.2)
        time.sleep(2.5)  # let any extra alert arrive
        alerted = _alerted(telegram, expected.underpriced)
        requests = len(fake.requests_to(OFFERS))
    duplicates = {offer_id: times for offer_id, times in alerted.items() if times > 1}
    print(
        f"\n{stopped_at - began:.0f} s listed: {len(expected.judged)} listings judged in "
        f"{done.page_seq} polls ({requests} offers requests, {done.recoveries} recoveries), "
        f"{len(found)} finds, {sum(alerted.values())} alerted; duplicates: {duplicates}"
    )


# Five watches' bands (cents): overlapping, within the listing's prices.
BANDS = [(100, 2_000), (1_500, 4_000), (3_000, 8_000), (6_000, 15_000), (12_000, 30_000)]
WINDOW_SECONDS = 10.0


def _offers_requests_over(fake: FakeDMarket, seconds: float) -> int:
    """The offers requests DMarket receives over the next `seconds`."""
    since = time.monotonic()
    time.sleep(seconds)
    until = time.monotonic()
    return sum(1 for request in fake.requests_to(OFFERS) if since <= request.received_at < until)


def test_five_fresh_watches_cost_the_requests_of_one_and_each_finds_its_band(
    configure: Callable[..., dict[str, str]],
    database_url: str,
    clock: StoppableClock,
    start_worker: Callable[..., CeleryProcess],
    start_beat: Callable[[], CeleryProcess],
) -> None:
    # Given a live listing whose prices never change (so a band holds a listing or not)
    live = LiveListing(5.0, seed=5150, sold_share=0.0, repriced_share=0.0, clock=clock)
    with FakeDMarket([], live=live, sales=recent_sales(live)) as fake:
        configure(
            MARKETSCAN_DMARKET_URL=fake.url,
            MARKETSCAN_DMARKET_REQUESTS_PER_SECOND="20",
            MARKETSCAN_DMARKET_OTHER_REQUESTS_PER_SECOND="20",
        )
        start_worker("fresh-1@test", concurrency=6)
        start_beat()
        # When one fresh watch polls for 10 s
        first = add_fresh_watch(min_price_cents=BANDS[0][0], max_price_cents=BANDS[0][1])
        scans = [scan_of(database_url, first)]
        wait_for_polls_after(database_url, scans, time.time())
        alone = _offers_requests_over(fake, WINDOW_SECONDS)
        # ... and then five of one interval, with other bands, poll for 10 s
        others = [
            add_fresh_watch(min_price_cents=low, max_price_cents=high) for low, high in BANDS[1:]
        ]
        scans += [scan_of(database_url, watch_id) for watch_id in others]
        wait_for_polls_after(database_url, scans, time.time())
        together = _offers_requests_over(fake, WINDOW_SECONDS)
        # Then the five cost DMarket the offers requests of one, within 10 % and one request
        assert 0 < together <= 1.1 * alone + 1, (alone, together)
        # And, once nothing more is listed, each found exactly the underpriced listings of
        # its band created since it began, and judged each listing of its band once
        stopped_at = clock.stop()
        wait_for_polls_after(database_url, scans, stopped_at)
        for scan_id, band in zip(scans, BANDS, strict=True):
            expected = oracle(live, floor_of(database_url, scan_id), stopped_at, band)
            judged = scan_row(database_url, scan_id).processed_items
            assert judged == len(expected.judged), (band, judged, len(expected.judged))
            assert set(finds_of(database_url, scan_id)) == expected.underpriced, band
    print(f"\noffers requests in {WINDOW_SECONDS:.0f} s: one watch {alone}, five {together}")


FULL_SCANS = 16
# 16 scans of 10 pages at 2 requests a second: they outlast the window several times over.
STATIC_ITEMS = [dmarket_item(f"full-{n:04d}", f"Static {n % 40}", 500 + 11 * n) for n in range(200)]
FULL_PAGE_SIZE = 20
BUSY_WINDOW_SECONDS = 20.0


def test_a_fresh_watch_keeps_polling_on_its_interval_while_full_scans_hold_the_budget(
    configure: Callable[..., dict[str, str]],
    database_url: str,
    start_worker: Callable[..., CeleryProcess],
    start_beat: Callable[[], CeleryProcess],
) -> None:
    # Given DMarket's unsigned budget, 2 listing requests a second, held by the fleet too
    live = LiveListing(5.0, seed=77)
    budgets = {"market_items": 2, "other": 6}
    with FakeDMarket(
        STATIC_ITEMS, live=live, sales=recent_sales(live), class_budgets=budgets
    ) as fake:
        configure(
            MARKETSCAN_DMARKET_URL=fake.url,
            MARKETSCAN_DMARKET_REQUESTS_PER_SECOND="2",
            MARKETSCAN_DMARKET_OTHER_REQUESTS_PER_SECOND="6",
        )
        start_worker("busy-1@test", concurrency=8)
        start_beat()
        # ... and 16 full scans of the v1 items queued on it
        full = [
            client.start(
                "csgo",
                market="dmarket",
                page_size=FULL_PAGE_SIZE,
                market_options={"api": "v1"},
            )
            for _ in range(FULL_SCANS)
        ]
        # When a fresh watch every 2 s is added
        scan_id = scan_of(database_url, add_fresh_watch())
        wait_for_polls_after(database_url, [scan_id], time.time(), polls=1)
        polls_before, _ = watermark_of(database_url, scan_id)
        items_before = sum(scan_row(database_url, scan).processed_items for scan in full)
        time.sleep(BUSY_WINDOW_SECONDS)
        polls_after, _ = watermark_of(database_url, scan_id)
        items_after = sum(scan_row(database_url, scan).processed_items for scan in full)
        refused = fake.rate_limited
    # Then the fresh watch committed at least half the polls its interval allows
    polls = polls_after - polls_before
    allowed = BUSY_WINDOW_SECONDS / EVERY_SECONDS
    assert polls >= allowed / 2, (polls, allowed)
    # And the full scans went on meanwhile, and DMarket refused nothing
    assert items_after > items_before
    assert refused == []
    print(
        f"\n{polls} polls of {allowed:.0f} allowed in {BUSY_WINDOW_SECONDS:.0f} s; full scans "
        f"judged {items_after - items_before} items meanwhile"
    )
