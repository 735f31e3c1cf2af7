"""The heartbeat of a running page: renewals that keep its lease alive while it runs.

A page may spend long in the market (a slow response, retries, a wait for the shared
request budget) or in judging. None of that is dying, so the lease is renewed every third
of its length for as long as the page runs, whatever the page is doing. A renewal that
matches nothing means the page is no longer ours (paused, cancelled, reclaimed): that
page's heartbeat stops and says so, and the page stops at its next item.

One thread per process beats for every page the process runs: starting a thread for each
page task was a cost a bare task does not pay, under a backlog of one-page tasks as often
as pages. The thread is started on first use in each process, never inherited: a pool
child forked from a parent that had one starts its own. Renewals of several pages (a
threads pool) run one after another; a renewal is one short UPDATE, and each page is
renewed three times per lease.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from types import TracebackType

from worker.db import DatabaseError

log = logging.getLogger(__name__)


class Heartbeat:
    """Calls `renew` every `interval_seconds` until stopped or until a renewal misses."""

    def __init__(self, renew: Callable[[], bool], interval_seconds: float) -> None:
        self._renew = renew
        self.interval_seconds = interval_seconds
        self.due = 0.0  # the beater's clock (time.monotonic) of the next renewal
        self._lost = threading.Event()
        self._stopped = False
        # Held for the length of a renewal, so stop() can wait for the one in flight.
        self._renewing = threading.Lock()

    @property
    def lost(self) -> bool:
        """True once a renewal found the page in other hands."""
        return self._lost.is_set()

    def __enter__(self) -> Heartbeat:
        _beater().add(self)
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
        _beater().remove(self)
        with self._renewing:
            pass

    def mark_stopped(self) -> None:
        self._stopped = True

    def beat(self) -> bool:
        """One renewal; False once this heartbeat is over (stopped, or the page lost)."""
        with self._renewing:
            if self._stopped:
                return False
            try:
                renewed = self._renew()
            except DatabaseError as exc:
                # The database is away: keep trying; if it stays away the lease lapses
                # and recovery takes over, which is what a lapsed lease is for.
                log.warning("lease renewal failed: %s", exc)
                return True
            if not renewed:
                self._lost.set()
                return False
            return True


class _Beater:
    """This process's heartbeat thread and the pages it beats for."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._changed = threading.Condition()
        self._beats: list[Heartbeat] = []
        self._thread: threading.Thread | None = None
        # When the thread wakes up next (None: when told), so that a page added with a
        # later due time, the usual case, need not wake it (a wake-up costs the GIL).
        self._wake_at: float | None = None

    def add(self, heartbeat: Heartbeat) -> None:
        with self._changed:
            heartbeat.due = time.monotonic() + heartbeat.interval_seconds
            self._beats.append(heartbeat)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="page-heartbeat", daemon=True
                )
                self._thread.start()
            if self._wake_at is None or heartbeat.due < self._wake_at:
                self._changed.notify()

    def remove(self, heartbeat: Heartbeat) -> None:
        with self._changed:
            heartbeat.mark_stopped()
            if heartbeat in self._beats:
                self._beats.remove(heartbeat)

    def _run(self) -> None:
        while True:
            heartbeat = self._next_due()
            if not heartbeat.beat():
                self.remove(heartbeat)

    def _next_due(self) -> Heartbeat:
        """Wait for the next renewal that is due, and schedule the one after it."""
        with self._changed:
            while True:
                now = time.monotonic()
                if self._beats:
                    heartbeat = min(self._beats, key=lambda beat: beat.due)
                    if heartbeat.due <= now:
                        heartbeat.due = now + heartbeat.interval_seconds
                        self._wake_at = heartbeat.due
                        return heartbeat
                    self._wake_at = heartbeat.due
                    self._changed.wait(heartbeat.due - now)
                else:
                    self._wake_at = None
                    self._changed.wait()


_beaters = _Beater()


def _beater() -> _Beater:
    """This process's beater; a forked child makes its own (its parent's thread is gone)."""
    global _beaters
    if _beaters.pid != os.getpid():
        _beaters = _Beater()
    return _beaters
