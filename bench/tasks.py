"""Benchmark-only Celery tasks, loaded into a worker with `--include bench.tasks`.

`bench.hop` (bench.hop) re-enqueues itself: the bare cost of one chain link (receive, run,
publish, ack, events) in marketscan's own worker, with nothing else. `bench.nodb_page` runs
the real page runner with the database taken away (bench.memory_store) and the same
publish-the-next-page chain. Timings go to Redis under `bench:` keys, written outside the
timed stretch."""

from __future__ import annotations

import json
import uuid
from functools import lru_cache
from typing import Any

import redis
from celery import Task
from sqlalchemy.orm import Session

from bench.hop import HOP_TASK, hop_step
from bench.memory_store import forget, store_of
from worker.app import app
from worker.page_message import PageMessage
from worker.page_runner import Outcome, PageContext, ScanProgress, run_page
from worker.settings import get_settings

NODB_PAGE_TASK = "bench.nodb_page"


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    return redis.Redis.from_url(get_settings().broker_url)


def nodb_key(scan_id: uuid.UUID | str) -> str:
    return f"bench:nodb:{scan_id}"


@app.task(name=HOP_TASK)  # type: ignore[untyped-decorator]
def hop(run_id: str, hops_left: int, hops_total: int) -> None:
    """One link of a chain that does nothing but publish the next link."""
    hop_step(app, run_id, hops_left, hops_total)


def _unbound_session() -> Session:
    # No bind: commit() with nothing executed touches no database.
    return Session()


@app.task(bind=True, name=NODB_PAGE_TASK)  # type: ignore[untyped-decorator]
def nodb_page(
    self: Task,
    scan_id: str,
    lease_token: str,
    page_seq: int,
    page_offset: int,
    params: dict[str, Any],
) -> str:
    """marketscan.scan.page with every read and write of the row replaced by memory."""
    message = PageMessage.from_args(scan_id, lease_token, page_seq, page_offset)
    store = store_of(message.scan_id, params)

    def publish(next_message: PageMessage) -> None:
        app.send_task(NODB_PAGE_TASK, args=(*next_message.as_args(), params))

    def progress(update: ScanProgress) -> None:
        self.send_event(
            "task-progress",
            scan_id=scan_id,
            page_seq=page_seq,
            processed=update.processed,
            total=update.total,
        )

    context = PageContext(
        owner=self.request.hostname or "unknown",
        settings=get_settings(),
        publish=publish,
        on_progress=progress,
        sessions=_unbound_session,
        store=store,
    )
    outcome = run_page(message, context)
    if outcome is Outcome.COMPLETED:
        _redis().set(nodb_key(scan_id), json.dumps(store.commit_times))
        forget(message.scan_id)
    return outcome.value
