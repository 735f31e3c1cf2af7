"""Celery signal handlers: drain on shutdown, fresh engines and market connections per
process, beat's clocks. The composition root (worker.app) connects them, handing down the
publisher that recovery and the clocks publish through."""

from __future__ import annotations

import functools
import logging
import socket
from typing import Any

import redis
from celery.signals import (
    beat_init,
    task_postrun,
    task_prerun,
    task_received,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutting_down,
)

from worker import broker_redis, observe
from worker.celery_glue import progress_events, shutdown_signals
from worker.celery_glue.alert_clock import alert_committed_finds, alerts_on
from worker.celery_glue.beat_clocks import BeatClock
from worker.celery_glue.drain import request_drain, request_stop_now
from worker.celery_glue.fresh_clock import publish_due_polls
from worker.celery_glue.publisher import PAGE_QUEUE, RECOVERED_QUEUE, Publisher
from worker.celery_glue.watch_clock import fire_due_watches
from worker.chain import broker_ledger
from worker.chain.ledger_audit import LedgerAudit
from worker.chain.recovery import recover
from worker.db import reset_engines, session_scope
from worker.domain.page_message import PAGE_TASK, PageMessage
from worker.errors import InvalidInput
from worker.markets.fleet import process_clients
from worker.metrics import events as metric_events
from worker.metrics import presence
from worker.metrics.exporter import process_store
from worker.notify import notifier
from worker.settings import get_settings

log = logging.getLogger(__name__)


def connect(publisher: Publisher) -> None:
    """Connect every handler of a worker or beat process; once, from worker.app."""
    worker_shutting_down.connect(_drain_on_shutdown)
    worker_process_init.connect(_fresh_engines)
    task_prerun.connect(_keep_flushing_metric_notes)
    task_prerun.connect(_arm_child_sigterm)
    task_postrun.connect(_spend_child_sigterm)
    worker_process_shutdown.connect(_close_market_connections)
    task_received.connect(_note_page_taken)
    # These two hold the publisher: a signal keeps only a weak reference by default, which
    # would let them go at once.
    worker_ready.connect(
        functools.partial(_recover_own_scans, publisher),
        weak=False,
        dispatch_uid="marketscan.recover_own_scans",
    )
    beat_init.connect(
        functools.partial(_start_beat_clocks, publisher),
        weak=False,
        dispatch_uid="marketscan.start_beat_clocks",
    )


def _drain_on_shutdown(sig: str | None = None, how: str | None = None, **_: Any) -> None:
    if how == "Cold":
        # Before the pool is terminated: the children's SIGTERM must end them, not drain.
        log.info("%s received (cold shutdown): running pages stop now", sig)
        request_stop_now()
        return
    log.info("%s received (%s shutdown): running pages will commit and hand over", sig, how)
    request_drain()
    shutdown_signals.arm_main_process()  # Celery just swapped its SIGINT handler


def _fresh_engines(**_: Any) -> None:
    # A forked pool child must never use its parent's database sockets.
    reset_engines()
    observe.enable(get_settings().metrics_enabled)
    shutdown_signals.mark_pool_child()


def _keep_flushing_metric_notes(**_: Any) -> None:
    # In the process that runs tasks (any pool): a thread moves its notes to the store
    # every second, off the page's path; a child killed loses at most that second's notes.
    settings = get_settings()
    if settings.metrics_enabled:
        metric_events.keep_flushing(process_store(settings.broker_url, settings.sentinel_master))


def _flush_metric_notes() -> None:
    settings = get_settings()
    if settings.metrics_enabled:
        metric_events.flush(process_store(settings.broker_url, settings.sentinel_master))


def _arm_child_sigterm(**_: Any) -> None:
    # A SIGTERM to the whole process group drains the child's page instead of killing it.
    shutdown_signals.arm_pool_child()


def _spend_child_sigterm(**_: Any) -> None:
    shutdown_signals.task_done()


def _close_market_connections(**_: Any) -> None:
    # Pool children leave through os._exit, which skips atexit: send what the notifier
    # still holds, and close keep-alive connections so the market (and the broker, for the
    # progress events) sees a clean goodbye.
    notifier.flush_all()
    process_clients.close_all()
    progress_events.close()
    _flush_metric_notes()


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


def recover_now(publisher: Publisher, own_hostname: str | None = None) -> int:
    """One recovery pass with this process's settings; how many scans were reclaimed."""
    settings = get_settings()
    with session_scope() as session:
        reclaimed = recover(
            session,
            publisher.publish_recovered_page,
            settings.lease_seconds,
            own_hostname=own_hostname,
            audit=_ledger_audit(settings.ledger_audit_seconds),
        )
    return len(reclaimed)


@functools.cache
def _ledger_audit(seconds: float) -> LedgerAudit:
    # One per process, so its walks of the queue stay rare across recovery passes.
    return LedgerAudit((PAGE_QUEUE, RECOVERED_QUEUE), seconds)


def _recover_own_scans(publisher: Publisher, sender: Any = None, **_: Any) -> None:
    shutdown_signals.arm_main_process()
    hostname = getattr(sender, "hostname", None)
    log.info("worker %s ready; reclaimed %d scans", hostname, recover_now(publisher, hostname))
    _announce("worker", hostname or "unknown")


def _start_beat_clocks(publisher: Publisher, **_: Any) -> None:
    log.info("beat started; reclaimed %d orphaned scans", recover_now(publisher))
    settings = get_settings()
    recovery = functools.partial(recover_now, publisher)
    BeatClock(
        recovery, settings.recovery_interval_seconds, "recovery", "reclaimed %d scans"
    ).start()
    watches = functools.partial(fire_due_watches, publisher.start)
    BeatClock(watches, settings.watch_tick_seconds, "watch clock", "started %d passes").start()
    # A due poll skips the full scans' backlog in the page queue, as a recovered page does:
    # the budget's priority lane can only serve a poll that a worker has taken.
    polls = functools.partial(publish_due_polls, publisher.publish_recovered_page)
    BeatClock(polls, settings.fresh_tick_seconds, "fresh clock", "published %d polls").start()
    if alerts_on():
        BeatClock(
            alert_committed_finds, settings.alert_tick_seconds, "alert follower", "sent %d alerts"
        ).start()
    _announce("beat", socket.gethostname())


def _announce(role: str, hostname: str) -> None:
    """Keep this process in the fleet's presence set (marketscan_processes{role})."""
    settings = get_settings()
    if settings.metrics_enabled:
        broker = broker_redis.shared(settings.broker_url, settings.sentinel_master)
        presence.Presence(broker, role, hostname).start()
