"""The recovery clock: runs recovery every interval from a thread of the beat process.

A recovery sent as a task would queue behind every page message and, with an expiry, be
thrown away there under a backlog; without one, it would run late. A thread beside beat's
scheduler runs on time whatever the queue holds. Lease times are PostgreSQL's now(), so no
host's clock matters; several beats may run it at once, since reclaiming is a
compare-and-set.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

from worker.db import DatabaseError

log = logging.getLogger(__name__)


class RecoveryTimer:
    """Calls `run_once` every `interval_seconds` on a daemon thread until stopped."""

    def __init__(
        self,
        run_once: Callable[[], int],
        interval_seconds: float,
        name: str = "recovery",
        done: str = "reclaimed %d scans",
    ) -> None:
        # The watch clock and the alert follower run on this same clock, under their names.
        self._run_once = run_once
        self._interval_seconds = interval_seconds
        self._name = name
        self._done = done
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"{name}-timer", daemon=True)

    def start(self) -> RecoveryTimer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stopped.wait(self._interval_seconds):
            try:
                reclaimed = self._run_once()
            except (DatabaseError, redis.RedisError) as exc:
                # An outage of either store is waited out: the next tick tries again.
                log.warning("%s could not run: %s", self._name, exc)
                continue
            if reclaimed:
                log.info("%s " + self._done, self._name, reclaimed)
