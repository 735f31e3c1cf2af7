"""Whole scans of the DMarket market against a loopback DMarket: retries, failure, resume."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity
from tests.fakes.dmarket_server import FakeDMarket, ScriptedReply, dmarket_item
from worker.chain import lifecycle as scans
from worker.chain.runner import Outcome, PageContext, run_page
from worker.db import reset_engines, session_scope
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.settings import Settings, get_settings
from worker.testing.dmarket_server import ITEMS_PATH
from worker.testing.dmarket_v2_replies import OFFERS_PATH

ITEMS = [
    dmarket_item(
        f"dm-{n:04d}", f"AK-47 | Redline #{n}", 1000 + n, 1000 + n + (400 if n % 7 == 0 else 0)
    )
    for n in range(250)
]


@pytest.fixture
def fake() -> Iterator[FakeDMarket]:
    with FakeDMarket(ITEMS) as server:
        yield server


@pytest.fixture
def settings(env: dict[str, str], fake: FakeDMarket, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MARKETSCAN_DMARKET_URL", fake.url)
    # The v1 listing and its suggested price (v2 scans: tests/acceptance/test_dmarket_v2.py).
    monkeypatch.setenv("MARKETSCAN_DMARKET_API", "v1")
    monkeypatch.setenv("MARKETSCAN_DMARKET_REQUESTS_PER_SECOND", "100")
    monkeypatch.setenv("MARKETSCAN_RETRY_BACKOFF_SECONDS", "0.01")
    monkeypatch.setenv("MARKETSCAN_MAX_RETRIES", "3")
    # One page per task, so each test can steer and see every page on its own.
    monkeypatch.setenv("MARKETSCAN_SLICE_PAGES", "1")
    get_settings.cache_clear()
    reset_engines()
    return get_settings()


def _start(settings: Settings) -> tuple[uuid.UUID, list[PageMessage]]:
    published: list[PageMessage] = []
    params = ScanParams(game="csgo", market="dmarket", fee=settings.fee)
    with session_scope() as session:
        return scans.start_scan(session, params, settings, published.append), published


def _drive(settings: Settings, published: list[PageMessage]) -> list[Outcome]:
    outcomes = []
    while published:
        context = PageContext("w1@test", settings, publish=published.append)
        outcomes.append(run_page(published.pop(0), context))
    return outcomes


def _row(session: Session, scan_id: uuid.UUID) -> ScanCheckpoint:
    session.expire_all()
    return session.scalars(select(ScanCheckpoint).where(ScanCheckpoint.scan_id == scan_id)).one()


def test_a_dmarket_scan_rides_out_429_and_500_and_finds_the_underpriced_items(
    settings: Settings, fake: FakeDMarket, session: Session
) -> None:
    fake.script(0, ScriptedReply.rate_limited(retry_after=0.05))
    fake.script(2, ScriptedReply.error(500))
    fake.script(3, ScriptedReply.rate_limited())
    scan_id, published = _start(settings)
    assert _drive(settings, published)[-1] is Outcome.COMPLETED
    done = _row(session, scan_id)
    assert (done.status, done.processed_items, done.total_items) == ("completed", 250, 250)
    found = set(session.scalars(select(ScanOpportunity.item_id)))
    assert found == {f"dm-{n:04d}" for n in range(0, 250, 7)}
    assert fake.requests[0].query["gameId"] == "a8db"
    assert fake.requests[0].query["currency"] == "USD"


def test_a_malformed_body_fails_the_scan_naming_the_problem_and_resume_finishes_it(
    settings: Settings, fake: FakeDMarket, session: Session
) -> None:
    # Given a market that answers the second page with a broken body
    fake.script(1, ScriptedReply.missing_field("title"), path=ITEMS_PATH)
    scan_id, published = _start(settings)
    # Then the scan fails at once with the field named, keeping page 0
    assert _drive(settings, published) == [Outcome.NEXT_PUBLISHED, Outcome.FAILED]
    failed = _row(session, scan_id)
    assert failed.status == "failed" and "objects[0].title" in (failed.error_message or "")
    assert failed.processed_items == 100
    # When it is resumed, Then it finishes from its checkpoint without counting page 0 again
    resumed: list[PageMessage] = []
    with session_scope() as s:
        scans.resume_scan(s, scan_id, settings, resumed.append)
    assert [(m.page_seq, m.page_offset) for m in resumed] == [(1, 0)]
    _drive(settings, resumed)
    done = _row(session, scan_id)
    assert (done.status, done.processed_items, done.error_message) == ("completed", 250, None)


def test_retries_run_out_and_the_scan_fails_with_the_last_error(
    settings: Settings, fake: FakeDMarket, session: Session
) -> None:
    # (429s: a 5xx in a row that many times opens the breaker, and the page waits instead,
    # tests/integration/test_dmarket_breaker.py)
    for n in range(4):
        fake.script(n, ScriptedReply.rate_limited(retry_after="0"))
    scan_id, published = _start(settings)
    assert _drive(settings, published) == [Outcome.FAILED]
    failed = _row(session, scan_id)
    assert failed.status == "failed"
    assert "market failed 4 times" in (failed.error_message or "")
    assert "429" in (failed.error_message or "")
    assert len(fake.requests) == 4


def test_a_page_waiting_on_retry_after_keeps_its_lease_alive(
    settings: Settings, fake: FakeDMarket, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from worker.chain.recovery import recover

    # Given a 2 s lease and a market that asks us to wait 3 s
    monkeypatch.setenv("MARKETSCAN_LEASE_SECONDS", "2")
    get_settings.cache_clear()
    short = get_settings()
    fake.script(0, ScriptedReply.rate_limited(retry_after=3))
    scan_id, published = _start(short)
    outcome: list[Outcome] = []
    waiting = threading.Thread(
        target=lambda: outcome.append(
            run_page(published.pop(0), PageContext("w1@test", short, publish=lambda m: None))
        )
    )
    waiting.start()
    # When recovery looks at it after the original lease would have expired
    time.sleep(2.6)
    with session_scope() as s:
        reclaimed = recover(s, lambda m: None, short.lease_seconds)
    waiting.join(timeout=30)
    # Then it was not taken away, and the page went on to commit
    assert reclaimed == []
    assert outcome == [Outcome.NEXT_PUBLISHED]
    assert _row(session, scan_id).processed_items == 100


def test_odd_listings_are_skipped_and_counted_and_the_scan_completes(
    settings: Settings, fake: FakeDMarket, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a page whose listings parse but hold values no column can store, and a total
    # beyond a 32-bit count
    odd = [
        dmarket_item("dm-nul", "AK-47 | Red\x00line", 1000, 5000),
        dmarket_item("dm-huge", "AWP | Asiimov", 1000, 2**63 + 5),
        dmarket_item("dm-million", "P250 | Sand Dune", 150, 100_000_000),
        dmarket_item("dm-good", "M4A4 | Howl", 1000, 5000),
    ]
    body = {"objects": odd, "cursor": "", "total": {"items": 2**31, "offers": 4, "orders": 0}}
    fake.script(0, ScriptedReply.json_body(body))
    # When the scan runs
    scan_id, published = _start(settings)
    assert _drive(settings, published) == [Outcome.COMPLETED]
    # Then it completes at once, every listing walked, the three odd ones skipped and counted
    done = _row(session, scan_id)
    assert (done.status, done.processed_items, done.skipped_items, done.total_items) == (
        "completed",
        4,
        3,
        None,
    )
    assert set(session.scalars(select(ScanOpportunity.item_id))) == {"dm-good"}
    # And the log says why each was skipped
    for item_id, why in (
        ("dm-nul", "title contains a NUL byte"),
        ("dm-huge", "reference_price_cents"),
        ("dm-million", "profit_percent"),
    ):
        assert any(item_id in r.message and why in r.message for r in caplog.records), item_id


def test_a_page_the_database_still_refuses_fails_the_scan_at_once_with_its_cause(
    settings: Settings, fake: FakeDMarket, session: Session, database_url: str
) -> None:
    from sqlalchemy import text

    # Given a database that refuses one of the page's opportunities (a rule validation
    # cannot know of, added from outside)
    session.execute(
        text(
            "ALTER TABLE scan_opportunities ADD CONSTRAINT test_refuses_one "
            "CHECK (item_id <> 'dm-0007')"
        )
    )
    session.commit()
    # When the scan runs its first page
    scan_id, published = _start(settings)
    assert _drive(settings, published) == [Outcome.FAILED]
    # Then the scan failed on the first delivery, with the database's reason, not "poison"
    done = _row(session, scan_id)
    assert done.status == "failed"
    assert "could not be stored" in (done.error_message or "")
    assert "test_refuses_one" in (done.error_message or "")
    assert done.page_deliveries == 1


def test_a_slice_fetches_each_next_page_ahead_and_never_one_too_many(
    settings: Settings, fake: FakeDMarket, session: Session
) -> None:
    # Given slices long enough for the whole three-page listing
    sliced = replace(settings, slice_pages=10, slice_ms=60_000)
    scan_id, published = _start(sliced)
    # When one page task walks it, each next page fetched while the last one commits
    assert _drive(sliced, published) == [Outcome.COMPLETED]
    # Then every listing was judged once, with one request per page and none beyond the end
    # (the fees and the candidates' best bids are lookups of their own, not pages)
    done = _row(session, scan_id)
    assert (done.status, done.processed_items) == ("completed", 250)
    found = set(session.scalars(select(ScanOpportunity.item_id)))
    assert found == {f"dm-{n:04d}" for n in range(0, 250, 7)}
    assert len(fake.requests_to(ITEMS_PATH)) == 3


def test_a_scan_keeps_the_listing_api_it_started_on_when_the_workers_change_theirs(
    settings: Settings, fake: FakeDMarket, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a scan started on the v1 listing, one page done
    scan_id, published = _start(settings)
    context = PageContext("w1@test", settings, publish=published.append)
    assert run_page(published.pop(0), context) is Outcome.NEXT_PUBLISHED
    stored = ScanParams.from_json(_row(session, scan_id).params)
    assert stored.market_options == {"api": "v1"}
    # When the workers are switched to v2 while it runs
    monkeypatch.setenv("MARKETSCAN_DMARKET_API", "v2")
    get_settings.cache_clear()
    switched = get_settings()
    assert _drive(switched, published)[-1] is Outcome.COMPLETED
    # Then every page still went to v1 (a v1 cursor means nothing to v2), and it ends exact
    assert fake.requests_to(OFFERS_PATH) == []
    assert len(fake.requests_to(ITEMS_PATH)) == 3
    done = _row(session, scan_id)
    assert (done.status, done.processed_items) == ("completed", 250)
