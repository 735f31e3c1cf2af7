"""A client-side rate limiter: request starts spaced at least one interval apart."""

from __future__ import annotations

import threading
import time

from worker.errors import InvalidInput


class RateLimiter:
    """Spaces calls to `acquire` at least 1/requests_per_second apart, across threads.

    Each caller reserves the next free slot under the lock and sleeps outside it, so
    waiting threads queue in arrival order and none holds the lock while asleep.
    """

    def __init__(self, requests_per_second: float) -> None:
        if not requests_per_second > 0:
            raise InvalidInput(f"requests_per_second: must be > 0, got {requests_per_second!r}")
        self.interval_seconds = 1.0 / requests_per_second
        self._lock = threading.Lock()
        self._next_start_at: float | None = None

    def acquire(self) -> None:
        """Block until this caller may start a request."""
        with self._lock:
            now = time.monotonic()
            start_at = now if self._next_start_at is None else max(now, self._next_start_at)
            self._next_start_at = start_at + self.interval_seconds
        wait_seconds = start_at - now
        if wait_seconds > 0:
            time.sleep(wait_seconds)
