"""What a scrape of `marketscan metrics` costs: it reads tallies kept where the rows are
written, never an aggregate over the stored checkpoints and finds, so its cost does not grow
with them; its values still equal what the rows say through page commits, redelivery,
steering, a day's drop and cleanup; and scrapes that arrive together share one reading.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from models import RUNNER_CALLER, RUNNER_CHAIN, ScanCheckpoint
from tests.support import metrics as scraped
from tests.support.opportunities import opportunity
from worker.chain import lifecycle
from worker.chain.runner import Outcome, PageContext, run_page
from worker.db import opportunity_days as days_sql
from worker.db import retention, session_scope, sync_engine, tallies
from worker.devtools.embedded import free_port
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.domain.status import ScanStatus
from worker.metrics.exporter import Exporter
from worker.settings import Settings, get_settings

# A statement that counts or sums over the stored rows: its cost grows with them.
_AGGREGATE = re.compile(r"\b(count|sum)\s*\(", re.IGNORECASE)
_STORED = (
    "scan_checkpoints",
    "scan_opportunities",
    "scan_checkpoint_days",
    "scan_opportunity_days",
)
COUNTERS = {
    "marketscan_pages_committed_total": tallies.RETIRED_PAGES,
    "marketscan_items_processed_total": tallies.RETIRED_ITEMS,
    "marketscan_items_skipped_total": tallies.RETIRED_SKIPPED,
    "marketscan_opportunities_found_total": tallies.RETIRED_OPPORTUNITIES,
}
SCRAPERS = 20


@pytest.fixture
def served(env: dict[str, str]) -> Iterator[Exporter]:
    exporter = Exporter("127.0.0.1", free_port(), env["CELERY_BROKER_URL"])
    thread = threading.Thread(target=exporter.serve_forever, daemon=True)
    thread.start()
    yield exporter
    exporter.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    """One page per task: the chain is steered page by page."""
    return replace(get_settings(), slice_pages=1)


class Statements:
    """Every statement the app's engine runs while recording, and by which thread; with
    `hold` set, the first reading of the tallies waits for it."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []
        self.hold: threading.Event | None = None
        self._lock = threading.Lock()

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        with self._lock:
            first = "metric_tallies" in statement and self.reading_tallies() == 0
            self.seen.append((threading.get_ident(), statement))
        if first and self.hold is not None:
            self.hold.wait(timeout=60)

    def reading_tallies(self) -> int:
        """Statements that read the metric tallies: one per reading of the fleet's state."""
        return sum("metric_tallies" in statement for _, statement in self.seen)


@pytest.fixture
def statements(env: dict[str, str]) -> Iterator[Statements]:
    recorder = Statements()
    engine = sync_engine()
    event.listen(engine, "before_cursor_execute", recorder)
    yield recorder
    event.remove(engine, "before_cursor_execute", recorder)


def _stored_scan(
    session: Session,
    *,
    created_days_ago: int,
    status: str,
    updated_days_ago: int = 0,
    finds: int = 0,
    runner: str = RUNNER_CHAIN,
) -> uuid.UUID:
    """A scan written as a program would write it (pages, items, skipped, finds), in the
    day it was created, that day's partitions made if missing."""
    scan_id = uuid.uuid4()
    created = datetime.now(UTC) - timedelta(days=created_days_ago)
    if created.date() not in days_sql.partitioned_days(session):
        days_sql.make_day(session, created.date())
    session.add(
        ScanCheckpoint(
            scan_id=scan_id, user_id=42, operation_type="market_scan", status=status,
            runner=runner, page_seq=3, processed_items=300, skipped_items=2,
            params={"game": "csgo"}, created_at=created,
            updated_at=datetime.now(UTC) - timedelta(days=updated_days_ago),
        )
    )  # fmt: skip
    session.flush()
    session.add_all(opportunity(session, scan_id, f"item-{n}") for n in range(finds))
    session.commit()
    return scan_id


def _truth(session: Session, database_url: str) -> dict[str, float]:
    """What the exporter must serve, read from the rows themselves: the chain's sums plus
    what cleanup retired, and the scans by status."""
    session.commit()
    rows = scraped.row_totals(database_url)
    retired = tallies.read(session)
    from_rows = {
        "marketscan_pages_committed_total": rows.pages,
        "marketscan_items_processed_total": rows.items,
        "marketscan_items_skipped_total": rows.skipped,
        "marketscan_opportunities_found_total": rows.opportunities,
    }
    truth: dict[str, float] = {
        name: from_rows[name] + retired.get((tally, ""), 0) for name, tally in COUNTERS.items()
    }
    by_status = dict(
        session.execute(
            select(ScanCheckpoint.status, func.count()).group_by(ScanCheckpoint.status)
        ).all()
    )
    for status in ScanStatus:
        truth[f"scans{{{status.value}}}"] = by_status.get(status.value, 0)
    return truth


def _served(exporter: Exporter) -> dict[str, float]:
    now = scraped.scrape(exporter.url)
    served = {name: scraped.total(now, name) for name in COUNTERS}
    for status in ScanStatus:
        served[f"scans{{{status.value}}}"] = now[
            ("marketscan_scans", frozenset({("status", status.value)}))
        ]
    return served


def _start(settings: Settings, items: int) -> list[PageMessage]:
    published: list[PageMessage] = []
    params = ScanParams(
        game="csgo", page_size=100, fee=settings.fee, market_options={"items": items, "seed": 3}
    )
    with session_scope() as session:
        lifecycle.start_scan(session, params, settings, published.append)
    return published


def test_a_scrape_reads_no_count_or_sum_over_the_stored_rows(
    served: Exporter, statements: Statements, session: Session, database_url: str
) -> None:
    # Given stored scans of every kind, with finds
    _stored_scan(session, created_days_ago=10, status="completed", updated_days_ago=10, finds=5)
    _stored_scan(session, created_days_ago=0, status="in_progress", finds=3)
    _stored_scan(session, created_days_ago=0, status="paused", runner=RUNNER_CALLER)
    # When Prometheus scrapes
    statements.seen.clear()
    values = _served(served)
    # Then no statement of the scrape counted or summed over the checkpoints or the finds
    growing = [
        statement
        for _, statement in statements.seen
        if _AGGREGATE.search(statement) and any(table in statement for table in _STORED)
    ]
    assert statements.seen and growing == []
    # And the values are what the rows say
    assert values == _truth(session, database_url)


def test_the_served_counts_equal_the_rows_through_commits_redelivery_a_days_drop_and_cleanup(
    served: Exporter, settings: Settings, session: Session, database_url: str
) -> None:
    # Given a finished day (cleanup drops it whole), a day a live scan keeps with a
    # finished scan in it (deleted row by row), and a caller's own scan
    for _ in range(2):
        _stored_scan(session, created_days_ago=12, status="completed", updated_days_ago=12,
                     finds=4)  # fmt: skip
    _stored_scan(session, created_days_ago=10, status="in_progress", updated_days_ago=10, finds=2)
    _stored_scan(session, created_days_ago=10, status="cancelled", updated_days_ago=10, finds=3)
    _stored_scan(session, created_days_ago=0, status="failed", runner=RUNNER_CALLER)
    assert _served(served) == _truth(session, database_url)

    # When a chain scan runs page by page, each page delivered twice
    published = _start(settings, items=450)
    assert _served(served) == _truth(session, database_url)
    outcomes = []
    while published:
        message = published.pop(0)
        outcomes.append(run_page(message, PageContext("w1@test", settings, published.append)))
        after_page = _served(served)
        # Then after each commit the exporter serves what the rows say
        assert after_page == _truth(session, database_url)
        # And the page's redelivery is dropped and changes nothing
        assert run_page(message, PageContext("w1@test", settings, published.append)) is (
            Outcome.STALE
        )
        assert _served(served) == after_page
    assert outcomes[-1] is Outcome.COMPLETED and len(outcomes) == 5

    # When a second chain scan is drained mid-page, then cancelled
    published = _start(settings, items=300)
    checks = iter([False] * 40 + [True] * 1000)
    handed: list[PageMessage] = []
    drained = PageContext("w1@test", settings, handed.append, drain_requested=lambda: next(checks))
    assert run_page(published.pop(0), drained) is Outcome.HANDED_OVER
    assert _served(served) == _truth(session, database_url)
    with session_scope() as steering:
        lifecycle.cancel_scan(steering, handed[0].scan_id)
    # Then its part page and its status are served as the rows hold them
    assert _served(served) == _truth(session, database_url)

    # When cleanup drops the finished day and deletes the old finished scan of the kept day
    before = _served(served)
    assert retention.cleanup_old_checkpoints(session, 7, pause_ratio=0) == 3
    assert days_sql.today(session) - timedelta(days=12) not in days_sql.partitioned_days(session)
    # Then the counters kept what the rows held, and the scans by status lost the rows
    after = _served(served)
    assert after == _truth(session, database_url)
    assert {name: after[name] for name in COUNTERS} == {name: before[name] for name in COUNTERS}
    assert after["scans{completed}"] == before["scans{completed}"] - 2
    assert after["scans{cancelled}"] == before["scans{cancelled}"] - 1


def test_concurrent_scrapes_wait_for_one_reading_of_the_fleet_instead_of_each_reading_it(
    served: Exporter, statements: Statements, session: Session, database_url: str
) -> None:
    # Given stored scans, and a reading of the fleet's state held up in the database
    _stored_scan(session, created_days_ago=0, status="in_progress", finds=3)
    truth = _truth(session, database_url)
    statements.seen.clear()
    statements.hold = threading.Event()
    results: list[dict[str, float]] = []

    def scrape() -> None:
        results.append(_served(served))

    # When 20 scrapes arrive while it is held
    scrapers = [threading.Thread(target=scrape) for _ in range(SCRAPERS)]
    for scraper in scrapers:
        scraper.start()
    deadline = time.monotonic() + 60
    while statements.reading_tallies() + served.collector.waiting < SCRAPERS:
        assert time.monotonic() < deadline, "the scrapes never all arrived"
        time.sleep(0.01)
    statements.hold.set()
    for scraper in scrapers:
        scraper.join(timeout=60)
    # Then all 20 were served the same, right values from one reading
    assert results == [truth] * SCRAPERS
    assert statements.reading_tallies() == 1
    assert len({thread for thread, _ in statements.seen}) == 1
