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
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity
from worker.chain import lifecycle
from worker.chain.recovery import recover
from worker.chain.runner import Outcome, PageContext, run_page
from worker.db import fresh_polls, reset_engines, session_scope
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
    with FakeDMarket([], live=live) as server:
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
    assert all(
        request.query.get("orderBy") == "createdAt" and request.query.get("orderDir") == "desc"
        for request in fake.requests
        if request.path == OFFERS_PATH
    )
