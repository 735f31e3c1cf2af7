"""Celery signal handlers: drain on shutdown, fresh engines and market connections per
process, startup recovery."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import (
    beat_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutting_down,
)

from worker.db import reset_engines, session_scope
from worker.markets import process_pool
from worker.publisher import publish_page
from worker.recovery import recover
from worker.settings import get_settings
from worker.shutdown import request_drain

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
    # Pool children leave through os._exit, which skips atexit: close keep-alive
    # connections here so the market sees a clean goodbye, not a reset.
    process_pool.close_all()


@worker_ready.connect
def _recover_own_scans(sender: Any = None, **_: Any) -> None:
    hostname = getattr(sender, "hostname", None)
    with session_scope() as session:
        reclaimed = recover(
            session, publish_page, get_settings().lease_seconds, own_hostname=hostname
        )
    log.info("worker %s ready; reclaimed %d scans", hostname, len(reclaimed))


@beat_init.connect
def _recover_at_beat_start(**_: Any) -> None:
    with session_scope() as session:
        reclaimed = recover(session, publish_page, get_settings().lease_seconds)
    log.info("beat started; reclaimed %d orphaned scans", len(reclaimed))
