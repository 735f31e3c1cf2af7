"""SIGTERM: a page in flight commits what it did, hands over the rest, and the worker exits."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest

from tests.support import commit_log
from tests.support.processes import CeleryProcess
from tests.support.scans import (
    expected_opportunities,
    row,
    start_scan_cli,
    stored_opportunities,
    wait_for_status,
)
from worker.domain.scan_params import ScanParams


def _wait_for_next_commit(database_url: str, scan_id: object, after: int) -> None:
    deadline = time.monotonic() + 60
    while row(database_url, scan_id).processed_items == after:  # type: ignore[arg-type]
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.parametrize("pool", ["prefork", "threads", "solo"])
def test_sigterm_mid_page_commits_partial_progress_and_a_new_worker_finishes(
    celery_env: dict[str, str],
    database_url: str,
    start_worker: Callable[..., CeleryProcess],
    pool: str,
) -> None:
    commit_log.install(database_url)
    # Given a worker in the middle of a page of slow items (100 items x 20 ms)
    first = start_worker("w1@test", pool=pool, concurrency=1)
    scan_id = start_scan_cli(
        celery_env, "--market-opt", "items=600", "--market-opt", "item_latency_ms=20"
    )
    _wait_for_next_commit(database_url, scan_id, 0)  # page 0 done: page 1 just started
    time.sleep(0.7)
    # When it receives SIGTERM
    sent = time.monotonic()
    first.signal(signal.SIGTERM)
    # Then it exits promptly, after committing the items it had done of its page
    assert first.wait(timeout=30) == 0
    exit_seconds = time.monotonic() - sent
    drained = row(database_url, scan_id)
    assert drained.status == "in_progress"
    assert drained.page_seq == 1 and 0 < drained.page_offset < 100, drained.page_offset
    assert drained.processed_items == 100 + drained.page_offset
    print(f"\n{pool}: SIGTERM to exit {exit_seconds:.2f}s, drained at offset {drained.page_offset}")
    # And a new worker finishes the scan exactly as an uninterrupted run would
    start_worker("w2@test", pool=pool, concurrency=1)
    done = wait_for_status(database_url, scan_id)
    assert done.processed_items == 600
    params = ScanParams.from_json(done.params)
    assert stored_opportunities(database_url, scan_id) == expected_opportunities(params)
    commit_log.assert_each_position_committed_once(database_url, scan_id, 600)
    assert (1, 0) in {(seq, off) for seq, off, _, _ in commit_log.commits(database_url, scan_id)}
    assert any(off > 0 for _, off, _, _ in commit_log.commits(database_url, scan_id))
