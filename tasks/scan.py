"""Scan tasks: start a scan, run one page. Thin: decode, call the runtime, report."""

from __future__ import annotations

import uuid
from typing import Any

from celery import Task
from sqlalchemy.exc import InterfaceError, OperationalError

from worker.app import app
from worker.db import session_scope
from worker.notifier import get_notifier
from worker.page_message import PageMessage
from worker.page_runner import PageContext, ScanProgress, run_page
from worker.publisher import publish_page
from worker.scan_params import ScanParams
from worker.scans import start_scan
from worker.settings import get_settings


@app.task(name="marketscan.scan.start")
def start(params: dict[str, Any]) -> str:
    """Validate `params`, store the scan, publish its first page; returns the scan_id."""
    scan_params = ScanParams.from_json(params)
    with session_scope() as session:
        scan_id: uuid.UUID = start_scan(session, scan_params, get_settings(), publish_page)
    return str(scan_id)


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
    """Run one page of a scan; see worker.page_runner for the steps."""
    message = PageMessage.from_args(scan_id, lease_token, page_seq, page_offset)
    notifier = get_notifier()

    def progress(update: ScanProgress) -> None:
        self.send_event(
            "task-progress",
            scan_id=scan_id,
            page_seq=page_seq,
            processed=update.processed,
            total=update.total,
        )
        notifier.progress(update)

    context = PageContext(
        owner=self.request.hostname or "unknown",
        settings=get_settings(),
        publish=publish_page,
        on_progress=progress,
        on_completed=notifier.completed,
        on_failed=notifier.failed,
        task_id=self.request.id,
        is_retry=bool(self.request.retries),
    )
    return run_page(message, context).value
