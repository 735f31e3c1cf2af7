"""A real worker's pool processes send their pages' task-progress events each through a
dispatcher of its own, made in that process (its connection named
`marketscan-progress-<pid>` in Redis), and keep sending after Redis drops that connection."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import psutil
import pytest
import redis

from tests.support.flower import EventRecorder
from tests.support.processes import CeleryProcess
from tests.support.progress_events import progress_clients
from tests.support.scans import start_scan_cli, wait_for_status

WORKER = "w1@test"
PAGE_SIZE = 100
DEADLINE_SECONDS = 60.0


@pytest.fixture(autouse=True)
def one_page_per_task(celery_env: dict[str, str]) -> None:
    """One event per task, so every page is a task a pool process takes on its own."""
    celery_env["MARKETSCAN_SLICE_PAGES"] = "1"


def start_scan(celery_env: dict[str, str], items: int) -> uuid.UUID:
    return start_scan_cli(
        celery_env, "--market-opt", f"items={items}", "--market-opt", "item_latency_ms=2"
    )


def progress_of(
    recorder: EventRecorder, scan_ids: Iterable[uuid.UUID], pages: int
) -> list[dict[str, Any]]:
    """The task-progress events of `scan_ids`, once `pages` of them have arrived."""
    wanted = {str(scan_id) for scan_id in scan_ids}
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        found = [e for e in recorder.events("task-progress") if e.get("scan_id") in wanted]
        if len(found) >= pages:
            return found
        assert time.monotonic() < deadline, f"{len(found)} of {pages} progress events arrived"
        time.sleep(0.1)


def pool_pids(worker: CeleryProcess) -> set[int]:
    return {child.pid for child in psutil.Process(worker.pid).children()}


def test_each_pool_process_sends_on_a_dispatcher_made_in_it(
    celery_env: dict[str, str],
    database_url: str,
    redis_url: str,
    start_worker: Callable[..., CeleryProcess],
) -> None:
    # Given a worker with two pool processes, and a recorder of the broker's events
    worker = start_worker(WORKER, concurrency=2)
    with EventRecorder(redis_url) as recorder:
        recorder.wait_for_worker(WORKER)
        # When two scans of five pages run side by side
        scans = [start_scan(celery_env, 500), start_scan(celery_env, 500)]
        for scan_id in scans:
            assert wait_for_status(database_url, scan_id).page_seq == 5
        events = progress_of(recorder, scans, 10)
    # Then each page sent one event, the worker's, carrying its page
    assert len(events) == 10 and {e["hostname"] for e in events} == {WORKER}
    assert sorted((e["scan_id"], e["page_seq"]) for e in events) == sorted(
        (str(scan_id), seq) for scan_id in scans for seq in range(5)
    )
    # And both pool processes sent, each from a dispatcher it made itself (the event's pid is
    # the dispatcher's maker), not the main process
    children = pool_pids(worker)
    assert len(children) == 2 and worker.pid not in children
    assert {e["pid"] for e in events} == children
    # And each holds its own connection to the broker, the main process none
    assert set(progress_clients(redis_url)) == children


def test_events_keep_flowing_after_redis_drops_the_dispatchers_connection(
    celery_env: dict[str, str],
    database_url: str,
    redis_url: str,
    start_worker: Callable[..., CeleryProcess],
) -> None:
    # Given a worker of one pool process that has sent a scan's progress
    worker = start_worker(WORKER, concurrency=1)
    with EventRecorder(redis_url) as recorder:
        recorder.wait_for_worker(WORKER)
        first = start_scan(celery_env, 300)
        wait_for_status(database_url, first)
        progress_of(recorder, [first], 3)
        (child,) = pool_pids(worker)
        held = progress_clients(redis_url)
        assert list(held) == [child]

        # When Redis drops that process's event connections (CLIENT KILL)
        broker = redis.Redis.from_url(redis_url)
        for client_id in held[child]:
            assert broker.client_kill_filter(_id=str(client_id)) == 1
        assert not set(progress_clients(redis_url).get(child, set())) & held[child]

        # Then the next scan's pages still report, one event each, from the same process
        second = start_scan(celery_env, 300)
        assert wait_for_status(database_url, second).page_seq == 3
        events = progress_of(recorder, [second], 3)
    assert sorted(e["page_seq"] for e in events) == [0, 1, 2]
    assert {e["pid"] for e in events} == {child} == pool_pids(worker)
    # On a connection made anew
    assert list(progress_clients(redis_url)) == [child]
    assert not progress_clients(redis_url)[child] & held[child]
    broker.close()
