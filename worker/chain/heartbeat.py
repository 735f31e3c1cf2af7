"""The heartbeat of a running page: a background thread that keeps its lease alive.

A page may spend long in the market (a slow response, retries, a wait for the shared
request budget) or in judging. None of that is dying, so the lease is renewed every third
of its length for as long as the page runs, whatever the page is doing. A renewal that
matches nothing means the page is no longer ours (paused, cancelled, reclaimed): the
heartbeat stops and says so, and the page stops at its next item.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

from worker.db import DatabaseError

log = logging.getLogger(__name__)


class Heartbeat:
    """Calls `renew` every `interval_seconds` until stopped or until a renewal misses."""

    def __init__(self, renew: Callable[[], bool], interval_seconds: float) -> None:
        self._renew = renew
        self._interval_seconds = interval_seconds
        self._stopped = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="page-heartbeat", daemon=True)

    @property
    def lost(self) -> bool:
        """True once a renewal found the page in other hands."""
        return self._lost.is_set()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop beating; returns once no renewal is in flight."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()

    def _beat(self) -> None:
        while not self._stopped.wait(self._interval_seconds):
            try:
                renewed = self._renew()
            except DatabaseError as exc:
                # The database is away: keep trying; if it stays away the lease lapses
                # and recovery takes over, which is what a lapsed lease is for.
                log.warning("lease renewal failed: %s", exc)
                continue
            if not renewed:
                self._lost.set()
                return
