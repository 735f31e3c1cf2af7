"""The Celery application and the composition root: `celery -A worker worker|beat|flower`.

It builds the app, the publisher over it and the signal handlers that use them, and passes
them down, as procrastinate's app.py does: no module below imports this one back. Whatever
publishes page messages (the tasks, the client, the CLI, the bench) takes `publisher` here.
"""

from __future__ import annotations

from celery import Celery

from worker.celery_glue import signals
from worker.celery_glue.publisher import Publisher

app = Celery("marketscan", include=["tasks.scan", "tasks.maintenance"])
app.config_from_object("celeryconfig")
publisher = Publisher(app)
# Drain on shutdown, per-process engines, start-up recovery and beat's clocks.
signals.connect(publisher)
