"""Celery signal handlers: drain on shutdown, fresh engines and market connections per
process, recovery clocks."""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery.signals import (
    beat_init,
    task_received,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutting_down,
)

from worker.celery_glue.alert_clock import alert_committed_finds, alerts_on
from worker.celery_glue.drain import request_drain
from worker.celery_glue.publisher import publish_recovered_page
from worker.celery_glue.recovery_timer import RecoveryTimer
from worker.celery_glue.watch_clock import fire_due_watches
from worker.chain import ledger as broker_ledger
from worker.chain.recovery import recover
from worker.db import reset_engines, session_scope
from worker.domain.page_message import PAGE_TASK, PageMessage
from worker.errors import InvalidInput
from worker.markets import process_pool
from worker.notify import notifier
from worker.settings import get_settings

log = logging.getLogger(__name__)


@worker_shutting_down.connect
def _drain_on_shutdown(sig: str | None = None, how: str | None = None, **_: Any) -> None:
    log.info("%s received (%s shutdown): running pages will commit and hand over", sig, how)
    request_drain()


@worker_process_init.connect
def _fresh_engines(**_: Any) -> None:
    # A forked pool child must never use its parent's database sockets.
    reset_engines()


@worker_process_shutdown.connect
def _close_market_connections(**_: Any) -> None:
    # Pool children leave through os._exit, which skips atexit: send what the notifier
    # still holds, and close keep-alive connections so the market sees a clean goodbye.
    notifier.flush_all()
    process_pool.close_all()


@task_received.connect
def _note_page_taken(request: Any = None, **_: Any) -> None:
    # The message leaves the queue for this worker's unacked set: if the worker dies before
    # the page starts, the marker names it, so recovery need not wait out the visibility
    # timeout (an hour) for the broker to hand the message out again.
    # `type` is the task's real name; `name` may be a display name (a shadow).
    if request is None or request.type != PAGE_TASK:
        return
    try:
        message = PageMessage.from_args(*request.args)
        broker_ledger.taken(message, request.hostname)
    except (InvalidInput, TypeError):
        return  # a malformed message: the task refuses it with the reason
    except redis.RedisError as exc:
        log.warning("could not mark page %s as taken: %s", request.args, exc)


def recover_now(own_hostname: str | None = None) -> int:
    """One recovery pass with this process's settings; how many scans were reclaimed."""
    with session_scope() as session:
        reclaimed = recover(
            session, publish_recovered_page, get_settings().lease_seconds, own_hostname=own_hostname
        )
    return len(reclaimed)


@worker_ready.connect
def _recover_own_scans(sender: Any = None, **_: Any) -> None:
    hostname = getattr(sender, "hostname", None)
    log.info("worker %s ready; reclaimed %d scans", hostname, recover_now(hostname))


@beat_init.connect
def _start_recovery_clock(**_: Any) -> None:
    log.info("beat started; reclaimed %d orphaned scans", recover_now())
    settings = get_settings()
    RecoveryTimer(recover_now, settings.recovery_interval_seconds).start()
    RecoveryTimer(
        fire_due_watches, settings.watch_tick_seconds, "watch clock", "started %d passes"
    ).start()
    if alerts_on():
        RecoveryTimer(
            alert_committed_finds, settings.watch_tick_seconds, "alert follower", "sent %d alerts"
        ).start()
