"""A SIGTERM to the whole process group (systemd's KillMode=control-group, `kill -- -PGID`)
drains like one to the main process; a second one, or SIGQUIT, still means "now"."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

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


def _wait_for_commit(database_url: str, scan_id: object, past: int) -> None:
    deadline = time.monotonic() + 60
    while row(database_url, scan_id).processed_items <= past:  # type: ignore[arg-type]
        assert time.monotonic() < deadline
        time.sleep(0.01)


def _slow_scan(celery_env: dict[str, str], item_latency_ms: int) -> object:
    return start_scan_cli(
        celery_env,
        "--market-opt",
        "items=600",
        "--market-opt",
        f"item_latency_ms={item_latency_ms}",
    )


def test_group_sigterm_mid_page_commits_partial_progress_once_and_the_scan_ends_exact(
    celery_env: dict[str, str],
    database_url: str,
    start_worker: Callable[..., CeleryProcess],
) -> None:
    commit_log.install(database_url)
    # Given a prefork worker in the middle of a page of slow items (100 items x 20 ms)
    first = start_worker("w1@test", pool="prefork", concurrency=1)
    scan_id = _slow_scan(celery_env, 20)
    _wait_for_commit(database_url, scan_id, 0)  # page 0 done: page 1 just started
    time.sleep(0.7)
    # When SIGTERM reaches the whole process group, pool child included
    sent = time.monotonic()
    os.killpg(first.pid, signal.SIGTERM)
    # Then the worker exits promptly, the child having committed the items it judged
    assert first.wait(timeout=30) == 0
    exit_seconds = time.monotonic() - sent
    drained = row(database_url, scan_id)  # type: ignore[arg-type]
    assert drained.page_seq == 1 and 0 < drained.page_offset < 100, drained.page_offset
    assert drained.processed_items == 100 + drained.page_offset
    log = first.log()
    assert "WorkerLostError" not in log and "exited prematurely" not in log, log
    print(f"\ngroup SIGTERM to exit {exit_seconds:.2f}s, drained at {drained.page_offset}")
    # And a new worker finishes the scan exactly, each position committed once
    start_worker("w2@test", pool="prefork", concurrency=1)
    done = wait_for_status(database_url, scan_id)  # type: ignore[arg-type]
    assert done.processed_items == 600
    params = ScanParams.from_json(done.params)
    assert stored_opportunities(database_url, scan_id) == expected_opportunities(params)  # type: ignore[arg-type]
    commit_log.assert_each_position_committed_once(database_url, scan_id, 600)  # type: ignore[arg-type]
    partial = [c for c in commit_log.commits(database_url, scan_id) if c[0] == 1 and c[1] == 0]  # type: ignore[arg-type]
    assert len(partial) == 1 and partial[0][2] == drained.page_offset


def _wait_mid_item(database_url: str, scan_id: object) -> None:
    deadline = time.monotonic() + 60
    while row(database_url, scan_id).lease_task_id is None:  # type: ignore[arg-type]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(1.0)  # inside the page's first 5 s item: a drain would wait for its end


def _exit_seconds(process: CeleryProcess, sent: float) -> float:
    process.wait(timeout=30)
    return time.monotonic() - sent


def test_a_second_group_sigterm_ends_the_worker_now(
    celery_env: dict[str, str],
    database_url: str,
    start_worker: Callable[..., CeleryProcess],
) -> None:
    # Given a prefork worker judging an item that takes 5 s, after a first group SIGTERM
    first = start_worker("w1@test", pool="prefork", concurrency=1)
    scan_id = start_scan_cli(
        celery_env,
        "--page-size",
        "2",
        "--market-opt",
        "items=40",
        "--market-opt",
        "item_latency_ms=5000",
    )
    _wait_mid_item(database_url, scan_id)
    os.killpg(first.pid, signal.SIGTERM)
    time.sleep(0.3)
    # When a second SIGTERM reaches the group
    sent = time.monotonic()
    os.killpg(first.pid, signal.SIGTERM)
    # Then the worker is gone well before the item could have ended
    seconds = _exit_seconds(first, sent)
    print(f"\nsecond group SIGTERM to exit {seconds:.2f}s")
    assert seconds < 3.0


def test_sigquit_after_a_warm_sigterm_ends_the_worker_now(
    celery_env: dict[str, str],
    database_url: str,
    start_worker: Callable[..., CeleryProcess],
) -> None:
    # Given a prefork worker in warm shutdown (SIGTERM to the main process) mid-item
    first = start_worker("w1@test", pool="prefork", concurrency=1)
    scan_id = start_scan_cli(
        celery_env,
        "--page-size",
        "2",
        "--market-opt",
        "items=40",
        "--market-opt",
        "item_latency_ms=5000",
    )
    _wait_mid_item(database_url, scan_id)
    first.signal(signal.SIGTERM)
    time.sleep(0.3)
    # When SIGQUIT asks for the cold shutdown (the main process SIGTERMs its children)
    sent = time.monotonic()
    first.signal(signal.SIGQUIT)
    # Then the child dies at once instead of draining: the worker is gone promptly
    seconds = _exit_seconds(first, sent)
    print(f"\nSIGQUIT (cold) to exit {seconds:.2f}s")
    assert seconds < 3.0


def test_group_sigquit_ends_the_worker_now(
    celery_env: dict[str, str],
    database_url: str,
    start_worker: Callable[..., CeleryProcess],
) -> None:
    # Given a prefork worker judging an item that takes 5 s
    first = start_worker("w1@test", pool="prefork", concurrency=1)
    scan_id = start_scan_cli(
        celery_env,
        "--page-size",
        "2",
        "--market-opt",
        "items=40",
        "--market-opt",
        "item_latency_ms=5000",
    )
    _wait_mid_item(database_url, scan_id)
    # When SIGQUIT reaches the whole group
    sent = time.monotonic()
    os.killpg(first.pid, signal.SIGQUIT)
    # Then the worker is gone promptly
    seconds = _exit_seconds(first, sent)
    print(f"\ngroup SIGQUIT to exit {seconds:.2f}s")
    assert seconds < 3.0


def _pool_children(main_pid: int) -> list[int]:
    text = Path(f"/proc/{main_pid}/task/{main_pid}/children").read_text()
    return [int(pid) for pid in text.split()]


def test_a_sigterm_to_one_pool_child_drains_its_page_and_the_worker_goes_on(
    celery_env: dict[str, str],
    database_url: str,
    start_worker: Callable[..., CeleryProcess],
) -> None:
    commit_log.install(database_url)
    # Given a prefork worker with one pool child in the middle of a page
    worker = start_worker("w1@test", pool="prefork", concurrency=1)
    scan_id = _slow_scan(celery_env, 20)
    _wait_for_commit(database_url, scan_id, 0)
    time.sleep(0.7)
    (child,) = _pool_children(worker.pid)
    # When that child alone gets a SIGTERM (not a shutdown of the worker)
    os.kill(child, signal.SIGTERM)
    # Then its page hands over what it judged, and the same worker finishes the scan
    # exactly: the drain was spent on that one page
    done = wait_for_status(database_url, scan_id)  # type: ignore[arg-type]
    assert done.processed_items == 600
    commits = commit_log.commits(database_url, scan_id)  # type: ignore[arg-type]
    assert any(offset > 0 for _, offset, _, _ in commits), commits
    commit_log.assert_each_position_committed_once(database_url, scan_id, 600)  # type: ignore[arg-type]
    assert worker.process is not None and worker.process.poll() is None
    assert "WorkerLostError" not in worker.log()
    assert _pool_children(worker.pid) == [child]
