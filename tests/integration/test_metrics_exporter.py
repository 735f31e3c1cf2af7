"""The exporter over real PostgreSQL and Redis: it serves every metric of the catalogue,
reads committed work from the rows, keeps it when cleanup deletes them, and counts a
recovery once, by cause, only when it won."""

from __future__ import annotations

import threading
import urllib.error
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy.orm import Session

from models import RUNNER_CALLER, RUNNER_CHAIN, ScanCheckpoint
from tests.support import metrics as scraped
from tests.support.opportunities import opportunity
from worker import observe
from worker.chain.recovery import recover
from worker.db import session_scope
from worker.db.retention import cleanup_old_checkpoints
from worker.devtools.embedded import free_port
from worker.metrics import catalogue, events
from worker.metrics.exporter import Exporter


@pytest.fixture
def exporter(env: dict[str, str]) -> Iterator[str]:
    served = Exporter("127.0.0.1", free_port(), env["CELERY_BROKER_URL"])
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    yield served.url
    served.shutdown()
    thread.join(timeout=10)


def _scan(session: Session, *, runner: str, status: str, pages: int, items: int,
          days_old: int = 0, opportunities: int = 0) -> uuid.UUID:  # fmt: skip
    scan_id = uuid.uuid4()
    moment = datetime.now(UTC) - timedelta(days=days_old)
    session.add(
        ScanCheckpoint(
            scan_id=scan_id, user_id=987654321012, operation_type="market_scan",
            status=status, runner=runner, page_seq=pages, processed_items=items,
            skipped_items=1, lease_token=uuid.uuid4(), updated_at=moment, timestamp=moment,
        )
    )  # fmt: skip
    session.flush()
    for index in range(opportunities):
        session.add(
            opportunity(session, scan_id, f"item-{index}", title="AK-47 | Redline (Field-Tested)")
        )
    session.commit()
    return scan_id


def test_every_metric_of_the_catalogue_is_served(exporter: str, redis_url: str) -> None:
    # Given one note of each kind flushed to the store the workers use
    observe.drain()
    observe.market_request("dmarket", "market_items", 200)
    observe.page_phase("fetch", 0.2)
    observe.budget_wait(0.0)
    observe.bot_update(allowed=False)
    observe.bot_error(bad_input=True)
    events.flush(events.RedisEventStore(redis.Redis.from_url(redis_url)))
    # When Prometheus scrapes, Then every series of the catalogue is there
    served = {name for name, _ in scraped.scrape(exporter)}
    missing = catalogue.exported_series_names() - served
    assert not missing, missing


def test_committed_work_is_read_from_the_rows_and_survives_cleanup(
    exporter: str, session: Session, database_url: str
) -> None:
    # Given chain scans (one finished long ago, one running) and a caller's own row
    _scan(session, runner=RUNNER_CHAIN, status="completed", pages=3, items=300, days_old=30,
          opportunities=2)  # fmt: skip
    _scan(session, runner=RUNNER_CHAIN, status="in_progress", pages=1, items=150, opportunities=1)
    _scan(session, runner=RUNNER_CALLER, status="completed", pages=9, items=999, days_old=30)
    before = scraped.scrape(exporter)
    # Then the counters are the chain rows' sums; a caller's own numbers are not the chain's
    assert scraped.total(before, "marketscan_pages_committed_total") == 4
    assert scraped.total(before, "marketscan_items_processed_total") == 450
    assert scraped.total(before, "marketscan_items_skipped_total") == 2
    assert scraped.total(before, "marketscan_opportunities_found_total") == 3
    assert before[("marketscan_scans", frozenset({("status", "completed")}))] == 2
    assert scraped.total(before, "marketscan_cleanup_last_success_timestamp_seconds") == 0
    scraped.assert_no_identifying_label(scraped.exposition(exporter), database_url)
    # When cleanup deletes the two old rows (and the finished scan's opportunities)
    with session_scope() as cleaning:
        assert cleanup_old_checkpoints(cleaning, days=7, pause_ratio=0) == 2
    after = scraped.scrape(exporter)
    # Then no counter went backwards, and the cleanup is counted
    kept = ("marketscan_pages_committed_total", "marketscan_items_processed_total",
            "marketscan_items_skipped_total", "marketscan_opportunities_found_total")  # fmt: skip
    for name in kept:
        assert scraped.total(after, name) == scraped.total(before, name), name
    assert scraped.total(after, "marketscan_cleanup_rows_deleted_total") == 2
    assert scraped.total(after, "marketscan_cleanup_last_success_timestamp_seconds") > 0
    assert after[("marketscan_scans", frozenset({("status", "completed")}))] == 0


def test_a_recovery_is_counted_once_by_its_cause(exporter: str, session: Session) -> None:
    # Given a running chain scan whose lease lapsed (its worker died)
    scan_id = _scan(session, runner=RUNNER_CHAIN, status="in_progress", pages=2, items=200)
    session.query(ScanCheckpoint).filter_by(scan_id=scan_id).update(
        {"lease_owner": "dead@host", "lease_expires_at": datetime.now(UTC) - timedelta(hours=1)}
    )
    session.commit()
    published: list[object] = []
    # When two recovery passes run, Then the first reclaims it, and it is counted once
    for _ in range(2):
        with session_scope() as recovering:
            recover(recovering, published.append, 30)
    assert len(published) == 1
    now = scraped.scrape(exporter)
    assert now[("marketscan_recoveries_total", frozenset({("cause", "lease_expired")}))] == 1
    assert scraped.total(now, "marketscan_recoveries_total") == 1
    assert now[("marketscan_oldest_queued_page_age_seconds", frozenset())] >= 0


def test_a_scrape_that_cannot_read_postgresql_fails_whole_instead_of_serving_zeros(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.db import reset_engines
    from worker.settings import get_settings

    # Given the exporter pointed at a PostgreSQL that is not there
    monkeypatch.setenv("DATABASE_URL", f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    get_settings.cache_clear()
    reset_engines()
    served = Exporter("127.0.0.1", free_port(), env["CELERY_BROKER_URL"])
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    try:
        # When Prometheus scrapes, Then the scrape fails (the target shows down), no zeros
        with pytest.raises(urllib.error.HTTPError) as failed:
            scraped.exposition(served.url)
        assert failed.value.code == 500
    finally:
        served.shutdown()
        thread.join(timeout=10)
        get_settings.cache_clear()
        reset_engines()
