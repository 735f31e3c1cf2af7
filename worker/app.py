"""The Celery application: `celery -A worker worker|beat|flower`."""

from __future__ import annotations

from celery import Celery

app = Celery("marketscan", include=["tasks.scan", "tasks.maintenance"])
app.config_from_object("celeryconfig")

# Signal handlers (drain flag, per-process engines, startup recovery) live with the app.
import worker.celery_glue.signals  # noqa: E402, F401
