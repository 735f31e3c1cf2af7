"""Time slices on real PostgreSQL: one page task walks several pages, each committed once
under its own fence, and stops between pages for a drain, a pause or a lost lease.

Publishing is handed in as a plain callable, so these tests record it instead of a broker.
Each test that takes `settings` runs twice: with nobody else waiting in the queue, and
under a backlog (others' pages always wait) whose slice bound is wide enough for three
pages, so the longer slices a backlog walks are held to the same exactly-once checks.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity
from tests.support import commit_log
from worker.chain import lifecycle as scans
from worker.chain.recovery import Cause, recover
from worker.chain.runner import Outcome, PageContext, ScanProgress, run_page
from worker.db import session_scope
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.settings import Settings, get_settings


class Crash(BaseException):
    """Stands for the worker dying in the middle of a slice."""


@pytest.fixture(params=["nobody waits", "a backlog waits"])
def settings(
    request: pytest.FixtureRequest, env: dict[str, str], database_url: str
) -> Iterator[Settings]:
    """Slices of at most three pages, never cut short by time on a loaded machine."""
    commit_log.install(database_url)
    backlog_ms = 60_000 if request.param == "a backlog waits" else 0
    yield replace(get_settings(), slice_pages=3, slice_ms=60_000, slice_backlog_ms=backlog_ms)


def _backlog(settings: Settings) -> bool:
    """Whether the queue has others' pages for these settings: always, in the variant
    with a backlog bound (see the `settings` fixture), never in the other."""
    return settings.slice_backlog_ms > 0


def _start(
    settings: Settings, items: int = 550, **options: object
) -> tuple[uuid.UUID, list[PageMessage], ScanParams]:
    published: list[PageMessage] = []
    params = ScanParams(
        game="csgo",
        page_size=100,
        fee=settings.fee,
        market_options={"items": items, "seed": 5, **options},
    )
    with session_scope() as session:
        scan_id = scans.start_scan(session, params, settings, published.append)
    return scan_id, published, params


def _row(session: Session, scan_id: uuid.UUID) -> ScanCheckpoint:
    session.expire_all()
    return session.scalars(select(ScanCheckpoint).where(ScanCheckpoint.scan_id == scan_id)).one()


def _found(session: Session, scan_id: uuid.UUID) -> list[str]:
    query = select(ScanOpportunity.item_id).where(ScanOpportunity.scan_id == scan_id)
    return sorted(session.scalars(query))


def _context(
    settings: Settings,
    published: list[PageMessage],
    *,
    on_progress: Callable[[ScanProgress], None] = lambda progress: None,
    drain_requested: Callable[[], bool] = lambda: False,
) -> PageContext:
    return PageContext(
        owner="w1@test",
        settings=settings,
        publish=published.append,
        on_progress=on_progress,
        drain_requested=drain_requested,
        others_waiting=lambda: _backlog(settings),
        sleep=lambda seconds: None,
    )


def _drive(settings: Settings, published: list[PageMessage]) -> list[Outcome]:
    outcomes = []
    while published:
        outcomes.append(run_page(published.pop(0), _context(settings, published)))
    return outcomes


def _walk_alone(params: ScanParams) -> list[str]:
    """The opportunities of the scan's catalog, found without a database."""
    from worker.devtools.uninterrupted_walk import uninterrupted_opportunities

    return sorted(found.item_id for found in uninterrupted_opportunities(params, get_settings()))


def test_one_page_task_walks_its_slice_committing_each_page_once(
    settings: Settings, database_url: str, session: Session
) -> None:
    # Given a six-page scan and slices of three pages
    scan_id, published, params = _start(settings)
    first = published.pop(0)
    # When its first page task runs
    seen: list[int] = []
    ctx = _context(settings, published, on_progress=lambda p: seen.append(p.processed))
    assert run_page(first, ctx) is Outcome.NEXT_PUBLISHED
    # Then it committed pages 0, 1 and 2, reported each, and published only page 3
    assert seen == [100, 200, 300]
    assert [(m.page_seq, m.page_offset) for m in published] == [(3, 0)]
    row = _row(session, scan_id)
    assert (row.page_seq, row.processed_items, row.lease_task_id, row.page_deliveries) == (
        3,
        300,
        None,
        0,
    )
    assert row.queued_at is not None and row.lease_expires_at is None
    # And the next task finishes the scan in one slice, exactly
    assert _drive(settings, published) == [Outcome.COMPLETED]
    assert _row(session, scan_id).processed_items == 550
    commit_log.assert_each_position_committed_once(database_url, scan_id, 550)
    assert _found(session, scan_id) == _walk_alone(params)


def test_a_slow_market_gives_one_page_per_task(settings: Settings, session: Session) -> None:
    # Given a market whose pages take 50 ms and slices of 20 ms
    slow = replace(settings, slice_ms=20)
    _, published, _ = _start(slow, latency_ms=50)
    # When a page task runs, Then it walks one page and hands the next to the queue
    assert run_page(published.pop(0), _context(slow, published)) is Outcome.NEXT_PUBLISHED
    assert [(m.page_seq, m.page_offset) for m in published] == [(1, 0)]


def test_a_drain_between_pages_hands_the_next_page_over_uncommitted(
    settings: Settings, database_url: str, session: Session
) -> None:
    # Given a slice whose worker is told to drain right after the slice's first commit
    scan_id, published, params = _start(settings)
    drained = threading.Event()
    ctx = _context(
        settings,
        published,
        on_progress=lambda progress: drained.set(),
        drain_requested=drained.is_set,
    )
    # When the page task runs
    assert run_page(published.pop(0), ctx) is Outcome.HANDED_OVER
    # Then page 0 is committed and page 1 went back to the queue as it was, uncounted
    assert [(m.page_seq, m.page_offset) for m in published] == [(1, 0)]
    row = _row(session, scan_id)
    assert (row.page_seq, row.page_offset, row.processed_items, row.page_deliveries) == (
        1,
        0,
        100,
        0,
    )
    assert row.queued_at is not None
    # And the scan still finishes exactly
    _drive(settings, published)
    commit_log.assert_each_position_committed_once(database_url, scan_id, 550)
    assert _found(session, scan_id) == _walk_alone(params)


def test_a_pause_inside_a_slice_stops_it_at_a_page_and_resume_finishes_exactly(
    settings: Settings, database_url: str, session: Session
) -> None:
    # Given a slice whose user pauses the scan as its first page is reported
    scan_id, published, params = _start(settings)

    def pause(progress: ScanProgress) -> None:
        with session_scope() as pausing:
            scans.pause_scan(pausing, scan_id)

    # When the page task runs
    outcome = run_page(published.pop(0), _context(settings, published, on_progress=pause))
    # Then it stopped without publishing, with whole pages committed and nothing held
    assert (outcome, published) == (Outcome.STOPPED, [])
    paused = _row(session, scan_id)
    assert paused.status == "paused" and paused.page_offset == 0
    assert (paused.lease_task_id, paused.queued_at) == (None, None)
    # And a resume walks the rest exactly once
    with session_scope() as resuming:
        scans.resume_scan(resuming, scan_id, settings, published.append)
    _drive(settings, published)
    assert _row(session, scan_id).status == "completed"
    commit_log.assert_each_position_committed_once(database_url, scan_id, 550)
    assert _found(session, scan_id) == _walk_alone(params)


def _die_mid_slice(settings: Settings, first: PageMessage) -> PageContext:
    """Run `first` in a page task that dies once its slice has committed two pages."""
    commits: list[int] = []

    def die_after_two() -> bool:
        if len(commits) == 2:
            raise Crash
        return False

    ctx = _context(
        settings,
        [],
        on_progress=lambda progress: commits.append(progress.processed),
        drain_requested=die_after_two,
    )
    with pytest.raises(Crash):
        run_page(first, ctx)
    return ctx


def test_a_redelivery_after_a_death_mid_slice_resumes_at_the_page_the_slice_held(
    settings: Settings, database_url: str, session: Session
) -> None:
    # Given a page task that died in the third page of its slice
    scan_id, published, params = _start(settings)
    first = published.pop(0)
    dead = _die_mid_slice(settings, first)
    # When the broker redelivers its message (same task id: a pool child died)
    again = replace(_context(settings, published), task_id=dead.task_id)
    assert run_page(first, again) is Outcome.NEXT_PUBLISHED
    # Then it took the row at page 2, counted the delivery, and walked on from there
    assert [(m.page_seq, m.page_offset) for m in published] == [(5, 0)]
    _drive(settings, published)
    assert (_row(session, scan_id).status, _row(session, scan_id).recoveries) == ("completed", 0)
    commit_log.assert_each_position_committed_once(database_url, scan_id, 550)
    assert _found(session, scan_id) == _walk_alone(params)


def test_a_worker_dying_inside_a_slice_leaves_a_running_page_that_recovery_finishes(
    settings: Settings, database_url: str, session: Session
) -> None:
    # Given a page task that died once its slice had committed two pages
    scan_id, published, params = _start(settings)
    first = published.pop(0)
    ctx = _die_mid_slice(settings, first)
    # Then page 2 is running under the dead task's lease, and nothing was published
    row = _row(session, scan_id)
    assert (row.page_seq, row.processed_items, row.queued_at, published) == (2, 200, None, [])
    assert row.lease_task_id == ctx.task_id and row.lease_expires_at is not None
    # And a copy of the first message under another delivery is stale: it changes nothing
    assert run_page(first, _context(settings, published)) is Outcome.STALE
    # When the lease lapses and recovery runs, Then page 2 is republished and the scan
    # finishes with every position committed once
    session.execute(
        update(ScanCheckpoint)
        .where(ScanCheckpoint.scan_id == scan_id)
        .values(lease_expires_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 1))
    )
    session.commit()
    republished: list[PageMessage] = []
    with session_scope() as recovering:
        reclaimed = recover(recovering, republished.append, settings.lease_seconds)
    assert [(r.cause, m.page_seq) for r, m in zip(reclaimed, republished, strict=True)] == [
        (Cause.LEASE_EXPIRED, 2)
    ]
    _drive(settings, republished)
    assert _row(session, scan_id).status == "completed"
    commit_log.assert_each_position_committed_once(database_url, scan_id, 550)
    assert _found(session, scan_id) == _walk_alone(params)


def test_a_slice_longer_than_the_lease_keeps_each_page_it_walks(
    settings: Settings, session: Session
) -> None:
    # Given a 2 s lease and three pages of about 1 s each in one slice
    long_slice = replace(settings, lease_seconds=2)
    scan_id, published, _ = _start(long_slice, items=300, item_latency_ms=10)
    # When the page task walks them all
    outcome = run_page(published.pop(0), _context(long_slice, published))
    # Then the heartbeat followed it from page to page: nothing was lost or stopped
    assert outcome is Outcome.COMPLETED
    done = _row(session, scan_id)
    assert (done.status, done.processed_items, done.recoveries) == ("completed", 300, 0)


def _asking_queue(answer: bool) -> tuple[list[bool], Callable[[], bool]]:
    """A queue check that gives `answer` and records that it was asked."""
    asked: list[bool] = []

    def others_waiting() -> bool:
        asked.append(answer)
        return answer

    return asked, others_waiting


def test_under_a_backlog_a_slice_walks_pages_within_its_bound_and_hands_over(
    env: dict[str, str], database_url: str, session: Session
) -> None:
    # Given other scans' pages waiting in the queue, and a backlog bound that three pages
    # fit in on any machine
    commit_log.install(database_url)
    backlog = replace(get_settings(), slice_pages=3, slice_ms=60_000, slice_backlog_ms=60_000)
    scan_id, published, params = _start(backlog)
    asked, others_waiting = _asking_queue(True)
    ctx = replace(_context(backlog, published), others_waiting=others_waiting)
    # When a page task runs
    assert run_page(published.pop(0), ctx) is Outcome.NEXT_PUBLISHED
    # Then it walked the slice's three pages and queued the fourth behind the others,
    # without asking the broker inside its bound
    assert [(m.page_seq, m.page_offset) for m in published] == [(3, 0)]
    assert asked == []
    assert _row(session, scan_id).processed_items == 300
    _drive(backlog, published)
    commit_log.assert_each_position_committed_once(database_url, scan_id, 550)
    assert _found(session, scan_id) == _walk_alone(params)


@pytest.mark.parametrize(("waiting", "pages_walked"), [(True, 1), (False, 3)])
@pytest.mark.parametrize(
    "slow_page",
    [{"latency_ms": 50}, {"item_latency_ms": 1}],
    ids=["fetched in 50 ms", "judged in 100 ms"],
)
def test_past_its_backlog_bound_a_slice_hands_over_only_if_others_wait(
    env: dict[str, str],
    session: Session,
    waiting: bool,
    pages_walked: int,
    slow_page: dict[str, int],
) -> None:
    # Given pages that take at least 50 ms to fetch or to judge, and a backlog bound of
    # 20 ms, well inside the slice's own bound
    bounded = replace(get_settings(), slice_pages=3, slice_ms=60_000, slice_backlog_ms=20)
    _, published, _ = _start(bounded, **slow_page)
    asked, others_waiting = _asking_queue(waiting)
    ctx = replace(_context(bounded, published), others_waiting=others_waiting)
    # When a page task runs
    run_page(published.pop(0), ctx)
    # Then it asked the queue past the bound: a backlog ends the slice after its page,
    # an empty queue lets it walk all three
    assert asked and [m.page_seq for m in published] == [pages_walked]


def test_a_backlog_bound_of_zero_gives_one_page_per_task_while_others_wait(
    env: dict[str, str], session: Session
) -> None:
    # Given other scans' pages waiting and slices told not to go on under a backlog
    single = replace(get_settings(), slice_pages=3, slice_ms=60_000, slice_backlog_ms=0)
    _, published, _ = _start(single)
    ctx = replace(_context(single, published), others_waiting=lambda: True)
    # When a page task runs, Then it walks one page and queues the next behind them
    assert run_page(published.pop(0), ctx) is Outcome.NEXT_PUBLISHED
    assert [(m.page_seq, m.page_offset) for m in published] == [(1, 0)]


def test_the_broker_says_whether_page_messages_wait(env: dict[str, str]) -> None:
    import redis

    from worker.app import publisher
    from worker.celery_glue.publisher import pages_waiting

    redis.Redis.from_url(env["CELERY_BROKER_URL"]).flushall()
    assert pages_waiting() is False
    publisher.publish_recovered_page(PageMessage(uuid.uuid4(), uuid.uuid4(), 0, 0))
    assert pages_waiting() is True
    redis.Redis.from_url(env["CELERY_BROKER_URL"]).flushall()
    publisher.publish_page(PageMessage(uuid.uuid4(), uuid.uuid4(), 0, 0))
    assert pages_waiting() is True


def test_a_broker_that_does_not_answer_ends_the_slice_rather_than_the_page(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.celery_glue.publisher import pages_waiting
    from worker.devtools.embedded import free_port

    # Given a broker URL nobody listens on
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()
    # Then the slice is told others may wait, and nothing is raised into the page
    assert pages_waiting() is True


def _lease_of(scan_id: uuid.UUID) -> tuple[int, object]:
    with session_scope() as reading:
        row = _row(reading, scan_id)
        return row.page_seq, row.lease_expires_at


def test_the_heartbeat_renews_the_lease_during_one_long_page(
    settings: Settings, session: Session
) -> None:
    # Given a 2 s lease and a single page of about 3 s
    long_page = replace(settings, lease_seconds=2)
    scan_id, published, _ = _start(long_page, items=100, item_latency_ms=30)
    leases: set[object] = set()

    def look_at_the_lease() -> bool:  # called by the page between its items
        if threading.current_thread() is threading.main_thread():
            page_seq, lease_expires_at = _lease_of(scan_id)
            if page_seq == 0:
                leases.add(lease_expires_at)
        return False

    ctx = _context(long_page, published, drain_requested=look_at_the_lease)
    # When the page task runs, Then its lease moved on while the page was judged
    assert run_page(published.pop(0), ctx) is Outcome.COMPLETED
    assert len(leases) > 1


def test_a_lease_lost_mid_slice_stops_the_page_and_the_slice(
    settings: Settings, session: Session
) -> None:
    # Given a slice whose page is taken by another delivery (as after a lapsed lease)
    # while its second page (about 3 s) is judged, with a 2 s lease renewed every 2/3 s;
    # only the heartbeat's missed renewal can tell, the scan's status and fence unchanged
    lost = replace(settings, lease_seconds=2)
    scan_id, published, _ = _start(lost, items=500, item_latency_ms=30)
    judged_after_taking: list[int] = []

    def take_page_one() -> bool:
        if threading.current_thread() is not threading.main_thread():
            return False  # the prefetch of the next page asks too
        if judged_after_taking:
            judged_after_taking.append(1)
        elif _lease_of(scan_id)[0] == 1:
            with session_scope() as taking:
                taking.execute(
                    update(ScanCheckpoint)
                    .where(ScanCheckpoint.scan_id == scan_id)
                    .values(lease_task_id="another-delivery")
                )
                taking.commit()
            judged_after_taking.append(1)
        return False

    ctx = _context(lost, published, drain_requested=take_page_one)
    # When the page task runs
    run_page(published.pop(0), ctx)
    # Then the missed renewal stopped page 1 before its end and the slice walked no
    # further: nothing past page 1 was committed or published
    assert 0 < len(judged_after_taking) < 100
    assert [m.page_seq for m in published] == [1]
    assert _row(session, scan_id).page_seq == 1
