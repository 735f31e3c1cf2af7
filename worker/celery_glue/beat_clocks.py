"""Beat's clocks: recovery, the watch clock and the alert follower, each a thread of the beat
process that calls its tick every interval.

A recovery sent as a task would queue behind every page message and, with an expiry, be
thrown away there under a backlog; without one, it would run late. A thread beside beat's
scheduler runs on time whatever the queue holds; so do a due watch pass
(worker.celery_glue.watch_clock) and an alert (worker.celery_glue.alert_clock). Lease times
are PostgreSQL's now(), so no host's clock matters; several beats may run recovery at once,
since reclaiming is a compare-and-set.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

from worker.db import DatabaseError

log = logging.getLogger(__name__)


class BeatClock:
    """Calls `run_once` every `interval_seconds` on a daemon thread until stopped; `done`
    logs what a tick did (its %d: what `run_once` returned, when not 0)."""

    def __init__(
        self, run_once: Callable[[], int], interval_seconds: float, name: str, done: str
    ) -> None:
        self._run_once = run_once
        self._interval_seconds = interval_seconds
        self._name = name
        self._done = done
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"{name}-timer", daemon=True)

    def start(self) -> BeatClock:
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
