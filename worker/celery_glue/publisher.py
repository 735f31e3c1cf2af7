"""Publishing page messages: the one place that turns a PageMessage into a Celery task, and
the one start of a scan (a session, `start_scan`, its first page published) that every way
in uses: the start task, the watch clock, the client and the bench.

The composition root (worker.app) makes the one Publisher over its app and hands it down;
nothing here imports the root back.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager

import redis
from celery import Celery

from worker.chain import broker_ledger
from worker.chain.lifecycle import start_scan
from worker.db import Session, session_scope
from worker.domain import page_message
from worker.domain.page_message import PAGE_TASK, PageMessage
from worker.domain.scan_params import ScanParams
from worker.settings import Settings, get_settings

log = logging.getLogger(__name__)

PAGE_QUEUE = page_message.PAGE_QUEUE
RECOVERED_QUEUE = page_message.RECOVERED_QUEUE


class Publisher:
    """Sends page messages as tasks of one Celery app, each noted in the broker ledger."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def publish_page(self, message: PageMessage, *, recovered: bool = False) -> None:
        # No shadow name: Flower labels its metrics by a task's shown name and never forgets
        # a label, so a name per page would grow its memory and /metrics with every page
        # run. Flower finds a page by its arguments (the scan id first) and its result.
        broker_ledger.publishing(message)
        self.app.send_task(
            PAGE_TASK, args=message.as_args(), queue=RECOVERED_QUEUE if recovered else PAGE_QUEUE
        )
        broker_ledger.sent(message)

    def publish_recovered_page(self, message: PageMessage) -> None:
        self.publish_page(message, recovered=True)

    def start(
        self,
        params: ScanParams,
        scan_id: uuid.UUID | None = None,
        *,
        settings: Settings | None = None,
        sessions: Callable[[], AbstractContextManager[Session]] = session_scope,
    ) -> uuid.UUID:
        """Store a scan and publish its first page after the commit; returns its scan_id.

        Idempotent on `scan_id` (invariant 9). `settings` default to the process's, and
        `sessions` to its database; the client passes its own, which name an unreachable
        database, and the bench one on the figure's database.
        """
        with sessions() as session:
            return start_scan(
                session, params, settings or get_settings(), self.publish_page, scan_id
            )


def pages_waiting() -> bool:
    """Whether page messages wait in either queue (kombu's Redis transport keeps each
    queue as a list under its name). A broker that does not answer counts as a queue with
    pages in it: the slice ends after this page, which is never wrong, only slower."""
    try:
        with broker_ledger.connection().pipeline(transaction=False) as pipe:
            for queue in page_message.QUEUES:
                pipe.llen(queue)
            return any(pipe.execute())
    except redis.RedisError as exc:
        log.warning("could not tell whether pages wait (%s); this slice ends here", exc)
        return True
