"""A fresh scan's polls, run in this process against the live loopback DMarket: every
listing created after the watch began is judged exactly once, late-visible ones and those
sharing a second included; the watermark and finds commit together; between polls the scan
rests (no lease, no message) and recovery leaves it alone; watches sharing a listing share
its walk."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity
from worker import redis_keys
from worker.chain import lifecycle
from worker.chain.recovery import recover
from worker.chain.runner import Outcome, PageContext, run_page
from worker.db import fresh_polls, reset_engines, session_scope
from worker.db.tallies import fleet_rows
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.domain.watermark import Watermark
from worker.settings import Settings, get_settings
from worker.testing.dmarket_live import LiveListing, ManualClock
from worker.testing.dmarket_server import FakeDMarket

OFFERS_PATH = "/marketplace-api/v2/offers"
START = 1_796_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def live(clock: ManualClock) -> LiveListing:
    # Many listings a second (shared createdAt), a fifth visible 1-4 s late, some sold.
    return LiveListing(8.0, seed=7, late_share=0.2, start=START, clock=clock)


@pytest.fixture
def fake(live: LiveListing) -> Iterator[FakeDMarket]:
    # Every title trades (five sales at its best bid, made as they are asked for): liquid.
    sales = {title: [cents] * 5 for title, (cents, _) in live.best_bids().items()}
    with FakeDMarket([], live=live, sales=sales) as server:
        yield server


@pytest.fixture
def settings(env: dict[str, str], fake: FakeDMarket, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MARKETSCAN_DMARKET_URL", fake.url)
    monkeypatch.setenv("MARKETSCAN_DMARKET_API", "v2")
    monkeypatch.setenv("MARKETSCAN_DMARKET_REQUESTS_PER_SECOND", "100")
    monkeypatch.setenv("MARKETSCAN_DMARKET_OTHER_REQUESTS_PER_SECOND", "100")
    monkeypatch.setenv("MARKETSCAN_FRESH_LOOKBACK_SECONDS", "10")
    monkeypatch.setenv("MARKETSCAN_FRESH_SHARE_SECONDS", "0")
    get_settings.cache_clear()
    reset_engines()
    return get_settings()


def _params(since: float, **fields: object) -> ScanParams:
    return ScanParams(
        game="csgo",
        market="dmarket",
        level="medium",
        fresh=True,
        poll_every_seconds=2,
        fresh_since=datetime.fromtimestamp(since, UTC).isoformat(),
        **fields,  # type: ignore[arg-type]
    )


def _start(settings: Settings, params: ScanParams) -> tuple[uuid.UUID, list[PageMessage]]:
    published: list[PageMessage] = []
    with session_scope() as session:
        return lifecycle.start_scan(session, params, settings, published.append), published


def _row(session: Session, scan_id: uuid.UUID) -> ScanCheckpoint:
    session.expire_all()
    return session.scalars(select(ScanCheckpoint).where(ScanCheckpoint.scan_id == scan_id)).one()


def _poll(settings: Settings, messages: list[PageMessage]) -> list[Outcome]:
    outcomes = []
    while messages:
        context = PageContext("w1@test", settings, publish=messages.append)
        outcomes.append(run_page(messages.pop(0), context))
    return outcomes


def _due_now(session: Session) -> list[PageMessage]:
    """Make every resting scan due (the database's clock does not move with the fake's),
    and take the due polls as beat's fresh clock would."""
    session.execute(
        update(ScanCheckpoint)
        .where(ScanCheckpoint.next_poll_at.is_not(None))
        .values(next_poll_at=text("now()"))
    )
    session.commit()
    due = fresh_polls.take_due_polls(session, "beat@test")
    session.commit()
    return due


def _judgeable(live: LiveListing, since: float, until: float) -> dict[str, int]:
    """Listings created from the watch's second on and visible at some time up to `until`:
    offer id -> the price first seen (a reprice never moves a listing across the line)."""
    return {
        offer.offer_id: offer.price_cents
        for offer in live.listings(until)
        if offer.created_second >= int(since) and offer.visible_at <= until
    }


def test_polls_judge_every_new_listing_once_and_rest_between(
    settings: Settings, live: LiveListing, clock: ManualClock, fake: FakeDMarket, session: Session
) -> None:
    since = clock.advance(5.0)
    scan_id, published = _start(settings, _params(since))
    assert _poll(settings, published) == [Outcome.RESTING]
    rested = _row(session, scan_id)
    assert (rested.status, rested.queued_at, rested.lease_expires_at) == ("in_progress", None, None)
    assert rested.next_poll_at is not None and rested.page_seq == 1
    # Recovery finds nothing to reclaim in a resting scan: waiting is not dying.
    with session_scope() as opened:
        assert recover(opened, lambda message: None, 0.0) == []
    polls = 1
    for _ in range(30):
        clock.advance(1.3)
        assert _poll(settings, _due_now(session)) == [Outcome.RESTING]
        polls += 1
    clock.advance(6.0)  # every late listing is visible by now, within the lookback
    assert _poll(settings, _due_now(session)) == [Outcome.RESTING]
    polls += 1
    done = _row(session, scan_id)
    expected = _judgeable(live, since, clock.now)
    assert done.processed_items == len(expected)
    assert done.page_seq == polls
    watermark = Watermark.from_cursor(done.cursor or "")
    assert watermark.gaps == 0
    found = set(session.scalars(select(ScanOpportunity.item_id)))
    underpriced = {
        offer.offer_id
        for offer in live.listings(clock.now)
        if offer.offer_id in expected
        and offer.underpriced
        and expected[offer.offer_id] >= 1_000
        and expected[offer.offer_id] <= 50_000
    }
    assert found == underpriced and found
    # Late listings and those sharing a second were among them, each judged once.
    assert any(offer.late for offer in live.listings(clock.now) if offer.offer_id in expected)
    # Walked newest first, the whole listing (a walk serves watches of every band).
    assert all(
        request.query.get("orderBy") == "createdAt"
        and request.query.get("orderDir") == "desc"
        and "priceFrom" not in request.query
        and "priceTo" not in request.query
        for request in fake.requests
        if request.path == OFFERS_PATH
    )


def test_five_fresh_watches_with_different_ranges_share_one_walk(
    settings: Settings,
    live: LiveListing,
    clock: ManualClock,
    fake: FakeDMarket,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARKETSCAN_FRESH_SHARE_SECONDS", "10")
    get_settings.cache_clear()
    settings = get_settings()
    broker = redis.Redis.from_url(settings.broker_url)
    since = clock.advance(2.0)
    bands = [(None, None), (1_000, 5_000), (2_000, 20_000), (5_000, None), (None, 3_000)]
    scans: list[uuid.UUID] = []
    first_polls: list[PageMessage] = []
    for low, high in bands:
        scan_id, published = _start(
            settings, _params(since, min_price_cents=low, max_price_cents=high)
        )
        scans.append(scan_id)
        first_polls += published
    _poll(settings, first_polls)
    rounds = 6
    for _ in range(rounds):
        clock.advance(1.0)
        # The last round's walk is older than the share now (the test's clock is not the
        # walk's): gone, as if that time had passed.
        for key in broker.scan_iter(f"{redis_keys.FRESH_WALK_PREFIX}*"):
            broker.delete(key)
        assert _poll(settings, _due_now(session)) == [Outcome.RESTING] * len(bands)
    # One walk a round (the first polls' and each round's), whatever the number of watches.
    assert len(fake.requests_to(OFFERS_PATH)) == 1 + rounds
    clock.advance(6.0)
    for key in broker.scan_iter(f"{redis_keys.FRESH_WALK_PREFIX}*"):
        broker.delete(key)
    _poll(settings, _due_now(session))
    expected = _judgeable(live, since, clock.now)
    for scan_id, (low, high) in zip(scans, bands, strict=True):
        band_low, band_high = max(1_000, low or 0), min(50_000, high or 50_000)
        in_band = {
            offer_id for offer_id, price in expected.items() if band_low <= price <= band_high
        }
        assert _row(session, scan_id).processed_items == len(in_band)
        found = set(
            session.scalars(
                select(ScanOpportunity.item_id).where(ScanOpportunity.scan_id == scan_id)
            )
        )
        underpriced = {o.offer_id for o in live.listings(clock.now) if o.underpriced}
        assert found == in_band & underpriced


def test_a_gap_deeper_than_the_page_bound_resumes_from_the_newest_and_is_counted(
    settings: Settings,
    clock: ManualClock,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MARKETSCAN_FRESH_MAX_GAP_PAGES", "1")
    get_settings.cache_clear()
    settings = get_settings()
    since = clock.advance(1.0)
    scan_id, published = _start(settings, _params(since))
    _poll(settings, published)
    # An outage of 40 s: 320 new listings, more than one page of 100 below the newest.
    clock.advance(40.0)
    assert _poll(settings, _due_now(session)) == [Outcome.RESTING]
    after_gap = _row(session, scan_id)
    watermark = Watermark.from_cursor(after_gap.cursor or "")
    assert watermark.gaps == 1 and watermark.gap_seconds > 0
    assert after_gap.processed_items == 100
    assert watermark.at >= int(clock.now) - 1
    # The next polls go on from the newest listing, with no further gap.
    clock.advance(2.0)
    _poll(settings, _due_now(session))
    assert Watermark.from_cursor(_row(session, scan_id).cursor or "").gaps == 1
    # And the metrics read it from the row: polls, the gap and what it walked past
    fresh = fleet_rows(session).fresh
    assert (fresh.polls, fresh.gaps, fresh.gap_seconds) == (3, 1, watermark.gap_seconds)
    assert 0 <= fresh.lag_seconds < 60


def test_a_poll_whose_worker_died_is_taken_over_and_judges_each_listing_once(
    settings: Settings, live: LiveListing, clock: ManualClock, session: Session
) -> None:
    since = clock.advance(1.0)
    scan_id, published = _start(settings, _params(since))
    _poll(settings, published)
    clock.advance(3.0)
    (due,) = _due_now(session)
    # A worker claims the poll and dies before its commit: its lease lapses.
    with session_scope() as opened:
        from worker.db import pages

        assert pages.claim(opened, due, "dead@host", "task-of-the-dead", 30) is not None
        opened.commit()
    session.execute(
        update(ScanCheckpoint)
        .where(ScanCheckpoint.scan_id == scan_id)
        .values(lease_expires_at=text("now() - interval '1 second'"))
    )
    session.commit()
    recovered: list[PageMessage] = []
    with session_scope() as opened:
        assert len(recover(opened, recovered.append, 0.0)) == 1
    # The stale message is dropped; the recovered poll judges what the dead one did not.
    assert _poll(settings, [due]) == [Outcome.STALE]
    assert _poll(settings, recovered) == [Outcome.RESTING]
    clock.advance(6.0)
    _poll(settings, _due_now(session))
    assert _row(session, scan_id).processed_items == len(_judgeable(live, since, clock.now))
