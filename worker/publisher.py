"""Publishing page messages: the one place that turns a PageMessage into a Celery task."""

from __future__ import annotations

from worker.page_message import PageMessage

PAGE_TASK = "marketscan.scan.page"


def publish_page(message: PageMessage) -> None:
    from worker.app import app

    app.send_task(PAGE_TASK, args=message.as_args())
