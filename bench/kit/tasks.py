"""Benchmark-only Celery tasks, loaded into a worker with `--include bench.kit.tasks`.

`bench.hop` (bench.kit.hop) re-enqueues itself: the bare cost of one chain link (receive, run,
publish, ack, events) in marketscan's own worker, with nothing else. `bench.nodb_page` runs
the real page runner with the database taken away (worker.testing.memory_pages) and the
same publish-the-next-page chain. Timings go to Redis under `bench:` keys, written outside
the timed stretch."""

from __future__ import annotations

import json
import time
import uuid
from functools import lru_cache
from typing import Any

import redis
from celery import Task
from sqlalchemy.orm import Session

from bench.kit.hop import HOP_TASK, hop_step
from worker import broker_redis
from worker.app import app
from worker.celery_glue.publisher import pages_waiting
from worker.chain.runner import Outcome, PageContext, ScanProgress, run_page
from worker.db.pages import Lease, PageResult
from worker.domain.page_message import PageMessage
from worker.settings import get_settings
from worker.testing.memory_pages import MemoryPageStore

NODB_PAGE_TASK = "bench.nodb_page"


@lru_cache(maxsize=1)
def _redis() -> redis.Redis:
    settings = get_settings()
    return broker_redis.new_client(settings.broker_url, settings.sentinel_master)


def nodb_key(scan_id: uuid.UUID | str) -> str:
    return f"bench:nodb:{scan_id}"


@app.task(name=HOP_TASK)  # type: ignore[untyped-decorator]
def hop(run_id: str, hops_left: int, hops_total: int) -> None:
    """One link of a chain that does nothing but publish the next link."""
    hop_step(app, run_id, hops_left, hops_total)


class TimedMemoryPageStore(MemoryPageStore):
    """The package's memory page store, remembering when each page committed (time.time())."""

    def __init__(self) -> None:
        super().__init__()
        self.commit_times: dict[uuid.UUID, dict[int, float]] = {}

    def commit_page(
        self,
        session: object,
        message: PageMessage,
        result: PageResult,
        *,
        keep: Lease | None = None,
    ) -> str | None:
        status = super().commit_page(session, message, result, keep=keep)
        if status is not None:
            self.commit_times.setdefault(message.scan_id, {})[message.page_seq] = time.time()
        return status

    def scan_of(self, message: PageMessage, params: dict[str, Any]) -> TimedMemoryPageStore:
        """The store, holding the scan of `message` (stored on its first page, as a start)."""
        if message.scan_id not in self.scans:
            self.start_scan(params, scan_id=message.scan_id, lease_token=message.lease_token)
        return self


# One store per worker process: a solo or one-child pool runs the whole chain.
_store = TimedMemoryPageStore()


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
    store = _store.scan_of(message, params)

    def publish(next_message: PageMessage) -> None:
        app.send_task(NODB_PAGE_TASK, args=(*next_message.as_args(), params))

    def progress(update: ScanProgress) -> None:
        self.send_event(
            "task-progress",
            scan_id=scan_id,
            page_seq=update.page_seq,
            processed=update.processed,
            total=update.total,
        )

    context = PageContext(
        owner=self.request.hostname or "unknown",
        settings=get_settings(),
        publish=publish,
        others_waiting=pages_waiting,
        on_progress=progress,
        sessions=_unbound_session,
        lease_sessions=_unbound_session,
        store=store,
    )
    outcome = run_page(message, context)
    if outcome is Outcome.COMPLETED:
        _redis().set(nodb_key(scan_id), json.dumps(store.commit_times.pop(message.scan_id)))
        store.forget(message.scan_id)
    return outcome.value
