"""Every Celery setting of marketscan, from the environment (via worker.settings), read once."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab
from kombu.entity import Queue

from worker import broker_redis
from worker.markets.dmarket import auth as dmarket_auth
from worker.settings import get_settings

_settings = get_settings()
# Workers sign DMarket requests with this pair: one that cannot sign stops the worker here,
# naming its variable, instead of failing every DMarket page it would take.
dmarket_auth.signer_from(_settings.dmarket_public_key, _settings.dmarket_secret_key)

broker_url = _settings.broker_url
broker_connection_retry_on_startup = True
# Redis re-delivers an unacked message after this long; it must outlast the longest page
# (the fence drops any re-delivery that arrives after the page committed anyway).
# Behind Sentinel (a sentinel:// URL), kombu also needs the master's name.
broker_transport_options: dict[str, Any] = {
    "visibility_timeout": _settings.visibility_timeout_seconds,
    **broker_redis.transport_options(_settings.broker_url, _settings.sentinel_master),
}

# JSON only: a pickle from the broker would be code execution.
task_serializer = "json"
result_serializer = "json"
event_serializer = "json"
accept_content = ["json"]

# The row in PostgreSQL is the result; nothing is stored in a result backend.
task_ignore_result = True
task_default_queue = "marketscan"
# Every worker consumes both queues in turn (no -Q needed): recovered pages skip the backlog.
# Queue objects, not names: Flower's broker page and queue API read them as such.
task_queues = tuple(Queue(name) for name in ("marketscan", "marketscan.recovered"))  # type: ignore[no-untyped-call]

# A page message is acked only after its task returns, and requeued if its process dies.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
worker_cancel_long_running_tasks_on_connection_loss = True

# Flower sees every task and its progress events: received, started (the task-started
# event), succeeded and task-progress, each page under the task's own name (its scan is in
# its arguments and result: a name per page would grow Flower's metrics). Priced by
# `python -m bench --only hop-settings`, this is the dearest setting of the hop.
worker_send_task_events = True
# Left at Celery's defaults, as they serve nothing here (see BENCHMARKS.md's hop table):
# - task_send_sent_event: one more event per publish; Flower lists a page from its
#   task-received event, with its arguments, so it only showed queued pages as SENT
#   (`marketscan scan list` shows the backlog).
# - task_track_started: it stores STARTED in a result backend, and with task_ignore_result
#   Celery's tracer skips it anyway.

timezone = "UTC"
enable_utc = True

# Recovery is not scheduled here: a message would wait behind the page backlog. Beat runs
# it on a clock of its own (worker.celery_glue.beat_clocks), every recovery interval.
beat_schedule: dict[str, dict[str, Any]] = {
    "cleanup-old-checkpoints": {
        "task": "marketscan.maintenance.cleanup",
        "schedule": crontab(hour=str(_settings.cleanup_hour_utc), minute="0"),
    },
}
