"""Scan tasks: start a scan, run one page. Thin: decode, call the runtime, report."""

from __future__ import annotations

from typing import Any

from celery import Task
from sqlalchemy.exc import InterfaceError, OperationalError

from worker.app import app, publisher
from worker.celery_glue import progress_events
from worker.celery_glue.drain import drain_requested
from worker.celery_glue.publisher import pages_waiting
from worker.chain.lifecycle import start_request
from worker.chain.runner import PageContext, ScanProgress, run_page
from worker.domain.page_message import PageMessage
from worker.domain.progress import total_text
from worker.notify.notifier import get_notifier
from worker.settings import get_settings


@app.task(
    bind=True,
    name="marketscan.scan.start",
    # A database outage is waited out; the retry keeps the task id, so it starts one scan.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=20,
)
def start(self: Task, params: dict[str, Any]) -> str:
    """Store scan `self.request.id` with `params` and publish its first page; returns its id.

    The task id is the scan id, so a duplicated or redelivered start creates nothing new.
    """
    scan_params, scan_id = start_request(params, self.request.id)
    return str(publisher.start(scan_params, scan_id))


@app.task(
    bind=True,
    name="marketscan.scan.page",
    # A database outage is waited out; the fence makes the retried message harmless. Other
    # database errors are not retried: the page runner fails the scan with their cause.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=20,
)
def page(self: Task, scan_id: str, lease_token: str, page_seq: int, page_offset: int) -> str:
    """Run one page of a scan; see worker.chain.runner for the steps."""
    message = PageMessage.from_args(scan_id, lease_token, page_seq, page_offset)
    notifier = get_notifier()
    reached: list[ScanProgress] = []

    def progress(update: ScanProgress) -> None:
        reached.append(update)
        progress_events.send_progress(
            app,
            self.request,
            scan_id=scan_id,
            page_seq=update.page_seq,
            processed=update.processed,
            total=update.total,
        )
        notifier.progress(update)

    context = PageContext(
        owner=self.request.hostname or "unknown",
        settings=get_settings(),
        publish=publisher.publish_page,
        others_waiting=pages_waiting,
        drain_requested=drain_requested,
        on_progress=progress,
        on_completed=notifier.completed,
        on_failed=notifier.failed,
        task_id=self.request.id,
        is_retry=bool(self.request.retries),
    )
    outcome = f"{message.label()}: {run_page(message, context).value}"
    if not reached:
        return outcome
    # The result is what Flower's task list shows beside the task's one shared name (and
    # what its search and the worker's log find): which scan and page, how far the scan got
    # with this task, and over how many pages when its time slice walked more than one.
    total = total_text(reached[-1].total, reached[-1].total_is_lower_bound) or "?"
    pages = f" over pages {reached[0].page_seq}-{reached[-1].page_seq}" if len(reached) > 1 else ""
    return f"{outcome}: {reached[-1].processed} of {total} items{pages}"
