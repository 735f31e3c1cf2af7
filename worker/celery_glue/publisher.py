"""Publishing page messages: the one place that turns a PageMessage into a Celery task."""

from __future__ import annotations

from functools import cache
from typing import Any

from worker.chain import ledger as broker_ledger
from worker.domain.page_message import PAGE_TASK, PageMessage

PAGE_QUEUE = "marketscan"
# Recovered pages skip the backlog: a worker consumes both queues in turn, so a reclaimed
# page waits for at most one page per slot, not for every page queued before it.
RECOVERED_QUEUE = "marketscan.recovered"


def publish_page(message: PageMessage, *, recovered: bool = False) -> None:
    from worker.app import app

    # The shadow name is what Flower and worker logs show; routing uses the real name.
    label = message.label()
    broker_ledger.publishing(message)
    app.send_task(
        PAGE_TASK,
        args=message.as_args(),
        queue=RECOVERED_QUEUE if recovered else PAGE_QUEUE,
        shadow=label,
        event_dispatcher=_Labelled(label),
    )
    broker_ledger.sent(message)


def publish_recovered_page(message: PageMessage) -> None:
    publish_page(message, recovered=True)


def pages_waiting() -> bool:
    """Whether page messages wait in either queue (kombu's Redis transport keeps each
    queue as a list under its name)."""
    with broker_ledger.connection().pipeline(transaction=False) as pipe:
        for queue in (PAGE_QUEUE, RECOVERED_QUEUE):
            pipe.llen(queue)
        return any(pipe.execute())


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
