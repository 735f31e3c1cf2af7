"""Pause, resume and cancel a scan that a real worker is running."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.support import commit_log
from tests.support.processes import CeleryProcess
from tests.support.scans import (
    cli,
    expected_opportunities,
    row,
    start_scan_cli,
    stored_opportunities,
    wait_for_progress,
    wait_for_status,
)
from worker.chain import lifecycle as scans
from worker.db import session_scope
from worker.domain.scan_params import ScanParams

SLOW_SCAN = ("--market-opt", "items=600", "--market-opt", "item_latency_ms=10")
# Three-second pages, so a pause sent half a second in lands well inside one.
SLOWER_SCAN = ("--market-opt", "items=600", "--market-opt", "item_latency_ms=30")


def _settled(database_url: str, scan_id: object) -> int:
    """processed_items once it stops changing (the page in flight has committed)."""
    last = -1
    while (now := row(database_url, scan_id).processed_items) != last:  # type: ignore[arg-type]
        last = now
        time.sleep(1.5)
    return last


def test_pause_stops_at_an_item_boundary_and_resume_finishes_exactly(
    celery_env: dict[str, str], database_url: str, start_worker: Callable[..., CeleryProcess]
) -> None:
    commit_log.install(database_url)
    start_worker(concurrency=1)
    scan_id = start_scan_cli(celery_env, *SLOWER_SCAN)
    wait_for_progress(database_url, scan_id, 100)
    time.sleep(0.5)
    # When the scan is paused mid-page (in-process: a CLI start-up could miss the page)
    with session_scope() as session:
        scans.pause_scan(session, scan_id)
    # Then the page in flight commits what it did and the scan stays put
    kept = _settled(database_url, scan_id)
    held = row(database_url, scan_id)
    assert held.status == "paused" and held.processed_items == kept < 600
    assert held.page_offset > 0, "the pause took effect mid-page, at an item boundary"
    # When it is resumed, Then it finishes with exactly the uninterrupted results
    resumed = cli(["scan", "resume", str(scan_id)], celery_env)
    assert resumed.returncode == 0, resumed.stderr
    done = wait_for_status(database_url, scan_id)
    assert done.processed_items == 600
    params = ScanParams.from_json(done.params)
    assert stored_opportunities(database_url, scan_id) == expected_opportunities(params)
    commit_log.assert_each_position_committed_once(database_url, scan_id, 600)


def test_cancel_keeps_committed_items_and_the_scan_never_resumes(
    celery_env: dict[str, str], database_url: str, start_worker: Callable[..., CeleryProcess]
) -> None:
    start_worker(concurrency=1)
    scan_id = start_scan_cli(celery_env, *SLOW_SCAN)
    wait_for_progress(database_url, scan_id, 100)
    cancelled = cli(["scan", "cancel", str(scan_id)], celery_env)
    assert cancelled.returncode == 0, cancelled.stderr
    kept = _settled(database_url, scan_id)
    final = row(database_url, scan_id)
    assert final.status == "cancelled" and final.processed_items == kept >= 100
    again = cli(["scan", "resume", str(scan_id)], celery_env)
    assert again.returncode == 2 and "is cancelled" in again.stderr


def test_a_pause_during_the_last_page_never_makes_the_scan_walk_again(
    celery_env: dict[str, str], database_url: str, start_worker: Callable[..., CeleryProcess]
) -> None:
    commit_log.install(database_url)
    start_worker(concurrency=1)
    # Given a one-page scan whose market takes 1 s to answer (less than the first heartbeat)
    scan_id = start_scan_cli(
        celery_env, "--market-opt", "items=80", "--market-opt", "latency_ms=1000"
    )
    deadline = time.monotonic() + 60
    while row(database_url, scan_id).lease_expires_at is None:  # its page has started
        assert time.monotonic() < deadline, "the page never started"
        time.sleep(0.01)
    # When the user pauses it while that last page is being fetched (in-process: a CLI
    # start-up could land after the page)
    with session_scope() as session:
        scans.pause_scan(session, scan_id)
    _settled(database_url, scan_id)
    # Then either the page's commit completed the scan (nothing is left to walk), or the
    # pause stopped the page before it judged anything and one resume finishes it
    if row(database_url, scan_id).status == "paused":
        resumed = cli(["scan", "resume", str(scan_id)], celery_env)
        assert resumed.returncode == 0, resumed.stderr
    done = wait_for_status(database_url, scan_id, ("completed",), timeout=60)
    # And in both cases the market was walked once: exact counts, each position once
    assert (done.processed_items, done.total_items, done.cursor) == (80, 80, None)
    commit_log.assert_each_position_committed_once(database_url, scan_id, 80)
    again = cli(["scan", "resume", str(scan_id)], celery_env)
    assert again.returncode == 2 and "is completed" in again.stderr
