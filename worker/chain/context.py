"""What a page task works with: its context, where its scan stands, how it ended.

The Celery task fills in a PageContext; the runner (worker.chain.runner) and its commits
(worker.chain.commit) report through it, never importing Celery.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import StrEnum

from worker.db import Session, relaxed_session_scope, session_scope
from worker.db import pages as page_store
from worker.db.pages import PageStore
from worker.domain.page_message import PageMessage
from worker.domain.progress import ScanProgress
from worker.settings import Settings

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    STALE = "stale"
    NEXT_PUBLISHED = "next_published"
    # A fresh watch's poll committed; the scan rests until its next poll is due.
    RESTING = "resting"
    COMPLETED = "completed"
    HANDED_OVER = "handed_over"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass
class PageContext:
    """What a page needs from its surroundings; the Celery task fills it in.

    `task_id` names this delivery of the message (a redelivery or retry keeps it);
    `is_retry` says the previous attempt of this delivery returned, so it is not counted
    again toward the poison-page limit. The `on_*` callbacks run after the commit and the
    publish they report, on the page's own thread; their errors are logged, never raised.
    """

    owner: str
    settings: Settings
    publish: Callable[[PageMessage], None]
    # True while other page messages wait in the queue: a slice then ends at its backlog
    # bound (settings.slice_backlog_ms), so no scan waits long on another's slice.
    others_waiting: Callable[[], bool] = lambda: False
    on_progress: Callable[[ScanProgress], None] = lambda progress: None
    on_completed: Callable[[ScanProgress], None] = lambda progress: None
    on_failed: Callable[[ScanProgress, str], None] = lambda progress, error_message: None
    sessions: Callable[[], AbstractContextManager[Session]] = session_scope
    # For the page's claim and lease renewals, each a statement of its own that needs no
    # WAL flush (worker.db.engine.relaxed_engine): one round trip each.
    lease_sessions: Callable[[], AbstractContextManager[Session]] = relaxed_session_scope
    # The worker's drain flag (worker.celery_glue.drain), which the Celery task hands in.
    drain_requested: Callable[[], bool] = lambda: False
    sleep: Callable[[float], None] = field(default=time.sleep)
    # Replaceable so the bench can time the same pipeline with the database taken away.
    store: PageStore = page_store
    task_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    is_retry: bool = False


def report(callback: Callable[..., None], *args: object) -> None:
    """Tell the user, never at the chain's expense: the row is the truth, reports are news."""
    try:
        callback(*args)
    except Exception:  # a report must never stop or delay the chain it reports on
        log.exception("progress report failed; the scan goes on")
