"""SIGKILL, lost pool children, dead workers and a flushed Redis: every scan still finishes
with exactly the results of an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import time
import uuid
from collections.abc import Callable

import psutil
import redis

from tests.support import commit_log
from tests.support.processes import CeleryProcess
from tests.support.scans import (
    expected_opportunities,
    row,
    start_scan_cli,
    stored_opportunities,
    wait_for_progress,
    wait_for_status,
)
from worker.domain.scan_params import ScanParams


def _assert_exact(database_url: str, scan_id: uuid.UUID, total: int) -> None:
    done = wait_for_status(database_url, scan_id, timeout=180)
    assert (done.status, done.processed_items, done.total_items) == ("completed", total, total)
    params = ScanParams.from_json(done.params)
    assert stored_opportunities(database_url, scan_id) == expected_opportunities(params)
    commit_log.assert_each_position_committed_once(database_url, scan_id, total)


def _wait_for_commit_after(database_url: str, scan_id: uuid.UUID, processed: int) -> float:
    started = time.monotonic()
    while row(database_url, scan_id).processed_items == processed:
        assert time.monotonic() - started < 120, "no commit within 120 s"
        time.sleep(0.01)
    return time.monotonic() - started


def test_sigkill_of_the_whole_worker_at_random_moments_loses_and_repeats_nothing(
    celery_env: dict[str, str], database_url: str, start_worker: Callable[..., CeleryProcess]
) -> None:
    commit_log.install(database_url)
    seed = int.from_bytes(os.urandom(4), "big")
    moments = random.Random(seed)
    print(f"\nkill moments seeded with {seed}")
    worker = start_worker("w1@test")
    scan_id = start_scan_cli(celery_env, "--market-opt", "items=20000", "--market-opt", "seed=11")
    for _ in range(4):
        time.sleep(moments.uniform(0.3, 2.0))
        before = row(database_url, scan_id)
        if before.status == "completed":
            break
        worker.kill_group()
        # Restarted under the same name, the worker reclaims its own scan at once.
        worker = start_worker("w1@test")
        resume_seconds = _wait_for_commit_after(database_url, scan_id, before.processed_items)
        print(f"killed at {before.processed_items} items; next commit {resume_seconds:.2f}s "
              "after ready")  # fmt: skip
    _assert_exact(database_url, scan_id, 20000)


def test_sigkill_of_a_pool_child_requeues_its_page_which_completes_once(
    celery_env: dict[str, str], database_url: str, start_worker: Callable[..., CeleryProcess]
) -> None:
    commit_log.install(database_url)
    worker = start_worker("w1@test", concurrency=1)
    scan_id = start_scan_cli(
        celery_env, "--market-opt", "items=300", "--market-opt", "item_latency_ms=10"
    )
    wait_for_progress(database_url, scan_id, 100)
    time.sleep(0.4)  # page 1 is in flight in the child
    children = psutil.Process(worker.pid).children()
    assert len(children) == 1
    os.kill(children[0].pid, signal.SIGKILL)
    _assert_exact(database_url, scan_id, 300)
    # No beat runs here: the page came back through the broker, not through recovery.
    assert row(database_url, scan_id).recoveries == 0


def test_a_dead_workers_scan_is_taken_over_by_the_live_one(
    celery_env: dict[str, str],
    database_url: str,
    start_worker: Callable[..., CeleryProcess],
    start_beat: Callable[[], CeleryProcess],
) -> None:
    commit_log.install(database_url)
    workers = {name: start_worker(name, concurrency=1) for name in ("a@test", "b@test")}
    start_beat()
    scan_id = start_scan_cli(
        celery_env, "--market-opt", "items=1500", "--market-opt", "item_latency_ms=15"
    )
    wait_for_progress(database_url, scan_id, 200)
    processed = row(database_url, scan_id).processed_items
    _wait_for_commit_after(database_url, scan_id, processed)
    time.sleep(0.5)  # the next page is in flight; its owner is the worker to kill
    victim = row(database_url, scan_id).lease_owner
    assert victim in workers
    killed_at = time.monotonic()
    processed = row(database_url, scan_id).processed_items
    workers[victim].kill_group()
    takeover = _wait_for_commit_after(database_url, scan_id, processed)
    print(f"\n{victim} killed; next commit after {takeover:.2f}s (lease 4 s + recovery 1 s)")
    _assert_exact(database_url, scan_id, 1500)
    final = row(database_url, scan_id)
    assert final.recoveries >= 1
    survivors = {owner for _, _, _, owner in commit_log.commits(database_url, scan_id)
                 if owner != victim}  # fmt: skip
    assert survivors == set(workers) - {victim}
    assert time.monotonic() - killed_at > 0


def test_a_flushed_redis_mid_scan_loses_nothing(
    celery_env: dict[str, str],
    database_url: str,
    start_worker: Callable[..., CeleryProcess],
    start_beat: Callable[[], CeleryProcess],
) -> None:
    commit_log.install(database_url)
    start_worker("w1@test")
    start_beat()
    scan_id = start_scan_cli(
        celery_env, "--market-opt", "items=3000", "--market-opt", "item_latency_ms=2"
    )
    wait_for_progress(database_url, scan_id, 500)
    client = redis.Redis.from_url(celery_env["CELERY_BROKER_URL"])
    client.flushall()
    client.close()
    _assert_exact(database_url, scan_id, 3000)


def test_a_poison_page_that_keeps_killing_its_worker_fails_the_scan(
    celery_env: dict[str, str], database_url: str, start_worker: Callable[..., CeleryProcess]
) -> None:
    start_worker("w1@test", concurrency=1)
    scan_id = start_scan_cli(
        celery_env, "--market-opt", "items=300", "--market-opt", "crash_item=150"
    )
    failed = wait_for_status(database_url, scan_id, ("failed",), timeout=120)
    assert "poison page" in (failed.error_message or "")
    assert (failed.page_seq, failed.processed_items) == (1, 100)
