"""The page runner on real PostgreSQL: fences, enqueue-after-commit, retries and failure.

Publishing is handed in as a plain callable, so these tests record it instead of a broker.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity
from worker.chain import lifecycle as scans
from worker.chain.recovery import Cause, recover
from worker.chain.runner import Outcome, PageContext, ScanProgress, run_page
from worker.db import session_scope
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.errors import InvalidTransition
from worker.settings import Settings, get_settings


class Crash(Exception):
    """Stands for the worker dying between the commit and the publish."""


@pytest.fixture
def settings(env: dict[str, str]) -> Iterator[Settings]:
    """One page per task: most tests here steer the chain page by page."""
    yield replace(get_settings(), slice_pages=1)


def _start(
    settings: Settings, items: int = 250, **options: object
) -> tuple[uuid.UUID, list[PageMessage]]:
    published: list[PageMessage] = []
    params = ScanParams(
        game="csgo",
        page_size=100,
        fee=settings.fee,
        market_options={"items": items, "seed": 3, **options},
    )
    with session_scope() as session:
        scan_id = scans.start_scan(session, params, settings, published.append)
    return scan_id, published


def _context(
    settings: Settings, published: list[PageMessage], owner: str = "w1@test"
) -> PageContext:
    return PageContext(
        owner=owner, settings=settings, publish=published.append, sleep=lambda s: None
    )


def _row(session: Session, scan_id: uuid.UUID) -> ScanCheckpoint:
    session.expire_all()
    return session.scalars(select(ScanCheckpoint).where(ScanCheckpoint.scan_id == scan_id)).one()


def _opportunities(session: Session, scan_id: uuid.UUID) -> list[tuple[str, int]]:
    return sorted(
        (item_id, page_seq)
        for item_id, page_seq in session.execute(
            select(ScanOpportunity.item_id, ScanOpportunity.page_seq).where(
                ScanOpportunity.scan_id == scan_id
            )
        ).all()
    )


def _orphan(session: Session, scan_id: uuid.UUID) -> None:
    """Make the scan an orphan: a running page's lease lapsed, a queued page aged past the
    grace (these tests publish to a list, so the broker holds no marker for it)."""
    an_hour_ago = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 3600)
    session.execute(
        update(ScanCheckpoint)
        .where(ScanCheckpoint.scan_id == scan_id)
        .values(
            lease_expires_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 1),
            queued_at=case((ScanCheckpoint.queued_at.is_(None), None), else_=an_hour_ago),
        )
    )
    session.commit()


def _drive(settings: Settings, published: list[PageMessage]) -> list[Outcome]:
    outcomes = []
    while published:
        outcomes.append(run_page(published.pop(0), _context(settings, published)))
    return outcomes


def test_a_chain_commits_each_page_once_and_completes(settings: Settings, session: Session) -> None:
    scan_id, published = _start(settings)
    outcomes = _drive(settings, published)
    assert outcomes == [Outcome.NEXT_PUBLISHED, Outcome.NEXT_PUBLISHED, Outcome.COMPLETED]
    done = _row(session, scan_id)
    assert (done.status, done.processed_items, done.page_seq, done.cursor) == (
        "completed",
        250,
        3,
        None,
    )
    assert done.lease_expires_at is None


def test_the_same_page_message_twice_changes_nothing_the_second_time(
    settings: Settings, session: Session
) -> None:
    # Given the first page ran once
    scan_id, published = _start(settings)
    first = published.pop(0)
    assert run_page(first, _context(settings, published)) is Outcome.NEXT_PUBLISHED
    after_once = (_row(session, scan_id).processed_items, _opportunities(session, scan_id))
    # When the very same message is delivered again, twice
    redelivered: list[PageMessage] = []
    assert run_page(first, _context(settings, redelivered)) is Outcome.STALE
    assert run_page(first, _context(settings, redelivered)) is Outcome.STALE
    # Then counts and results are unchanged and nothing more was published
    assert (_row(session, scan_id).processed_items, _opportunities(session, scan_id)) == after_once
    assert redelivered == []


def test_an_old_token_message_after_a_lease_change_is_dropped(
    settings: Settings, session: Session
) -> None:
    # Given a scan whose lease was taken over by recovery (a new token)
    scan_id, published = _start(settings)
    old = published.pop(0)
    _orphan(session, scan_id)
    republished: list[PageMessage] = []
    with session_scope() as recovering:
        assert len(recover(recovering, republished.append, settings.lease_seconds)) == 1
    # When the old chain's message runs
    assert run_page(old, _context(settings, [])) is Outcome.STALE
    # Then nothing was counted, and the new chain finishes the scan exactly once
    assert _row(session, scan_id).processed_items == 0
    _drive(settings, republished)
    done = _row(session, scan_id)
    assert (done.status, done.processed_items, done.recoveries) == ("completed", 250, 1)


def test_a_crash_between_commit_and_publish_leaves_the_due_page_in_the_row(
    settings: Settings, session: Session
) -> None:
    # Given a page whose worker dies right after its commit, before publishing
    scan_id, published = _start(settings)

    def crash(message: PageMessage) -> None:
        raise Crash(message)

    with pytest.raises(Crash):
        run_page(published.pop(0), PageContext("w1@test", settings, publish=crash))
    # Then the row says page 1 is due, with page 0's items committed
    row = _row(session, scan_id)
    assert (row.status, row.page_seq, row.page_offset, row.processed_items) == (
        "in_progress",
        1,
        0,
        100,
    )
    assert row.cursor is not None
    # And once it is past the grace with no message in the broker, recovery publishes
    # exactly that page and the scan finishes
    _orphan(session, scan_id)
    republished: list[PageMessage] = []
    with session_scope() as recovering:
        reclaimed = recover(recovering, republished.append, settings.lease_seconds)
    assert [(m.page_seq, m.page_offset) for m in republished] == [(1, 0)]
    assert reclaimed[0].cause is Cause.BROKER_LOST
    _drive(settings, republished)
    assert _row(session, scan_id).processed_items == 250


def test_a_drain_mid_page_commits_the_items_done_and_hands_over_the_rest(
    settings: Settings, session: Session
) -> None:
    scan_id, published = _start(settings, items=100)
    checks = iter([False] * 40 + [True] * 1000)
    handed: list[PageMessage] = []
    ctx = PageContext(
        "w1@test", settings, publish=handed.append, drain_requested=lambda: next(checks)
    )
    assert run_page(published.pop(0), ctx) is Outcome.HANDED_OVER
    row = _row(session, scan_id)
    assert (row.page_seq, row.page_offset, row.processed_items) == (0, 40, 40)
    assert [(m.page_seq, m.page_offset) for m in handed] == [(0, 40)]
    _drive(settings, handed)
    done = _row(session, scan_id)
    assert (done.status, done.processed_items, done.page_seq) == ("completed", 100, 1)


def test_a_poison_page_fails_the_scan_after_the_delivery_limit(
    settings: Settings, session: Session
) -> None:
    scan_id, published = _start(settings)
    message = published[0]
    # Each delivery that dies mid-page leaves its claim counted; simulate the deaths by
    # claiming without finishing.
    from worker.db import pages as page_store

    for death in range(settings.max_page_deliveries):
        with session_scope() as claiming:
            task_id = f"delivery-{death}"
            assert page_store.claim(claiming, message, "w1@test", task_id, 30)
            claiming.commit()
        _orphan(session, scan_id)
    assert run_page(message, _context(settings, [])) is Outcome.FAILED
    row = _row(session, scan_id)
    assert row.status == "failed" and "poison page" in (row.error_message or "")


def test_a_scan_paused_during_its_last_page_completes_and_never_walks_again(
    settings: Settings, session: Session
) -> None:
    # Given a one-page scan whose fetch takes 0.6 s
    scan_id, published = _start(settings, items=50, latency_ms=600)

    def pause() -> None:
        with session_scope() as pausing:
            scans.pause_scan(pausing, scan_id)

    # When its user pauses it while that last page is being fetched
    pauser = threading.Timer(0.2, pause)
    pauser.start()
    outcome = run_page(published.pop(0), _context(settings, published))
    pauser.join()
    # Then the page's commit completes the scan: nothing is left to do
    assert outcome is Outcome.COMPLETED
    done = _row(session, scan_id)
    assert (done.status, done.processed_items, done.cursor, published) == (
        "completed",
        50,
        None,
        [],
    )
    # And it cannot be resumed into a second walk of the market
    with session_scope() as resuming, pytest.raises(InvalidTransition):
        scans.resume_scan(resuming, scan_id, settings, published.append)
    assert published == []


def test_a_failing_progress_report_never_stops_the_chain(
    settings: Settings, session: Session
) -> None:
    # Given progress reporting that fails on every page (an event broker that is down)
    def broken(progress: ScanProgress) -> None:
        raise ConnectionError("event broker unreachable")

    scan_id, published = _start(settings)
    # When the chain runs
    outcomes = []
    while published:
        context = PageContext("w1@test", settings, publish=published.append, on_progress=broken)
        outcomes.append(run_page(published.pop(0), context))
    # Then every page was published and committed regardless
    assert outcomes == [Outcome.NEXT_PUBLISHED, Outcome.NEXT_PUBLISHED, Outcome.COMPLETED]
    assert _row(session, scan_id).processed_items == 250
