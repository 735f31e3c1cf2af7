"""Fetching one page from the market: retryable errors are retried with backoff.

The waits honour the market's Retry-After and stop at once when the page must stop (a
drain, or a lease that is no longer ours); the page's heartbeat keeps the lease alive
meanwhile, so a long wait is never mistaken for a dead worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from worker.errors import RetryableMarketError
from worker.markets.base import MarketSource, Page
from worker.markets.fleet.backoff import retry_delay_seconds
from worker.settings import Settings

log = logging.getLogger(__name__)

# How often a waiting page looks at its stop condition.
STOP_POLL_SECONDS = 0.25
# A page waiting its turn (the fleet's budget, an open breaker) polls about once a second;
# it says so when it starts waiting and then once this often, not at every poll.
WAIT_LOG_EVERY_SECONDS = 60.0


def fetch(
    market: MarketSource,
    cursor: str | None,
    limit: int,
    settings: Settings,
    *,
    should_stop: Callable[[], bool],
    sleep: Callable[[float], None] = time.sleep,
    label: str = "",
) -> Page | str | None:
    """The page, or the failure text once retries run out, or None if told to stop."""
    attempt = 0
    waiting_logged_at: float | None = None
    while True:
        try:
            return market.fetch_page(cursor, limit)
        except RetryableMarketError as exc:
            if exc.counts_as_retry and attempt >= settings.max_retries:
                return f"market failed {attempt + 1} times; last error: {exc}"
            delay = retry_delay_seconds(
                attempt,
                settings.retry_backoff_seconds,
                settings.retry_backoff_max_seconds,
                exc.retry_after_seconds,
            )
            if exc.counts_as_retry:
                log.warning("page %s: %s; retry %d in %.1fs", label, exc, attempt + 1, delay)
            elif waiting_logged_at is None or (
                time.monotonic() - waiting_logged_at >= WAIT_LOG_EVERY_SECONDS
            ):
                waiting_logged_at = time.monotonic()
                log.warning("page %s: %s; waiting, trying again in %.1fs", label, exc, delay)
            if not _wait(delay, should_stop, sleep):
                return None
            if exc.counts_as_retry:  # a wait for the fleet's rate budget is not a failure
                attempt += 1


def _wait(delay: float, should_stop: Callable[[], bool], sleep: Callable[[float], None]) -> bool:
    """Sleep `delay` seconds in short slices; False if told to stop meanwhile."""
    deadline = time.monotonic() + delay
    while (left := deadline - time.monotonic()) > 0:
        if should_stop():
            return False
        sleep(min(left, STOP_POLL_SECONDS))
    return not should_stop()
