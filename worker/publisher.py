"""Publishing page messages: the one place that turns a PageMessage into a Celery task."""

from __future__ import annotations

from functools import cache
from typing import Any

from worker.page_message import PageMessage

PAGE_TASK = "marketscan.scan.page"


def publish_page(message: PageMessage) -> None:
    from worker.app import app

    # The shadow name is what Flower and worker logs show; routing uses the real name.
    label = message.label()
    app.send_task(
        PAGE_TASK, args=message.as_args(), shadow=label, event_dispatcher=_Labelled(label)
    )


class _Labelled:
    """Sends a page's task-sent event under its shadow name, as its other events are.

    Celery names task-sent by the real task; when it reaches Flower after task-received
    (their order is not guaranteed), Flower's state would take that name over the shadow.
    """

    def __init__(self, label: str) -> None:
        self.label = label

    def publish(self, type: str, fields: dict[str, Any], producer: Any, **options: Any) -> Any:
        return _dispatcher().publish(type, {**fields, "name": self.label}, producer, **options)


@cache
def _dispatcher() -> Any:
    from worker.app import app

    # As Celery's own: Dispatcher.publish is given the producer, so it need not be enabled.
    return app.events.Dispatcher(enabled=False)
