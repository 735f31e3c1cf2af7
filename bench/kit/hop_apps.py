"""Bare Celery apps that price the hop one setting at a time: `-A bench.kit.hop_apps:<name>`.

Each app starts from Celery's own defaults (no result backend), adds one setting that
celeryconfig.py sets (or all of them, `ours`), consumes queues of its own and runs only
`bench.hop`, so their workers run side by side in one bench run. None imports worker.app:
marketscan's signal handlers run only in the project's worker, whose hop is figure 1's
"our settings" floor. Every setting in celeryconfig.py is priced here or said to cost
nothing (serializers and accept_content equal Celery's defaults; timezone, enable_utc and
broker_connection_retry_on_startup act outside the hop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import Celery

from bench.kit.hop import HOP_TASK, hop_step
from worker.settings import get_settings

QUEUE_PREFIX = "bench.hop."


@dataclass(frozen=True)
class Variant:
    """One app: the settings it adds to Celery's defaults and the promise they serve."""

    name: str
    settings: dict[str, Any]
    promise: str


def _two_queues(name: str) -> dict[str, Any]:
    # As celeryconfig's marketscan + marketscan.recovered, under this app's own names.
    queue = QUEUE_PREFIX + name
    return {"task_queues": {queue: {}, f"{queue}.recovered": {}}}


def _visibility_timeout() -> dict[str, Any]:
    seconds = get_settings().visibility_timeout_seconds
    return {"broker_transport_options": {"visibility_timeout": seconds}}


VARIANTS = (
    Variant("defaults", {}, "Celery's defaults: the floor every row is compared with"),
    Variant(
        "acks_late",
        {"task_acks_late": True},
        "a page whose worker dies mid-page is redelivered, not lost (invariant 1)",
    ),
    Variant(
        "prefetch_1",
        {"worker_prefetch_multiplier": 1},
        "a slot reserves no second page: a queued page is never stuck behind a long one, "
        "and reserved messages do not sit in the unacked set past recovery's grace",
    ),
    Variant(
        "acks_late_prefetch_1",
        {"task_acks_late": True, "worker_prefetch_multiplier": 1},
        "the two above together, as Celery's guide pairs them for long tasks",
    ),
    Variant(
        "reject_on_worker_lost",
        {"task_acks_late": True, "task_reject_on_worker_lost": True},
        "on top of acks_late: a page whose pool process was killed (OOM) is requeued",
    ),
    Variant(
        "task_events",
        {"worker_send_task_events": True},
        "Flower: received, started, succeeded and progress (`-E`)",
    ),
    Variant(
        "late_ack_events",
        {"task_acks_late": True, "worker_prefetch_multiplier": 1, "worker_send_task_events": True},
        "the late-ack pair with task events: what the settings cost together, not one by one",
    ),
    Variant(
        "sent_event",
        {"task_send_sent_event": True},
        "Flower shows a page as SENT while it waits in the queue",
    ),
    Variant(
        "ignore_result",
        {"task_ignore_result": True},
        "no result backend call after each task (the row in PostgreSQL is the result)",
    ),
    Variant(
        "track_started",
        {"task_ignore_result": True, "task_track_started": True},
        "none: it stores STARTED in a result backend, and with task_ignore_result Celery's "
        "tracer skips it (compare with the row above); Flower's STARTED is the task-started "
        "event",
    ),
    Variant(
        "recovered_queue",
        {},
        "a second queue, consumed in turn: a recovered page skips the backlog",
    ),
    Variant(
        "visibility_timeout",
        {},
        "Redis redelivers an unacked page only after the longest page could have run",
    ),
    Variant(
        "cancel_on_connection_loss",
        {"worker_cancel_long_running_tasks_on_connection_loss": True},
        "a page whose broker connection dropped is cancelled rather than run twice",
    ),
    Variant("ours", {}, "every setting of celeryconfig.py, without marketscan's signals"),
)


def _make(variant: Variant) -> Celery:
    app = Celery(f"bench-hop-{variant.name}", set_as_current=False)
    if variant.name == "ours":
        app.config_from_object("celeryconfig")
    extra = {
        "recovered_queue": _two_queues(variant.name),
        "ours": _two_queues(variant.name),
        "visibility_timeout": _visibility_timeout(),
    }.get(variant.name, {})
    app.conf.update(
        broker_url=get_settings().broker_url,
        task_default_queue=QUEUE_PREFIX + variant.name,
        **variant.settings,
        **extra,
    )

    # shared=False: a shared task would be registered on every app, the first one winning.
    @app.task(name=HOP_TASK, shared=False)  # type: ignore[untyped-decorator]
    def hop(run_id: str, hops_left: int, hops_total: int) -> None:
        hop_step(app, run_id, hops_left, hops_total)

    return app


APPS: dict[str, Celery] = {variant.name: _make(variant) for variant in VARIANTS}
# `celery -A bench.kit.hop_apps:<name>` finds each app as a module attribute.
globals().update(APPS)
