"""One computation for every caller that arrives while it runs.

The exporter's scrape reads PostgreSQL and Redis; anyone who can reach its port may ask
for it, as often and as many at once as they like. Scrapes that arrive while a reading
is under way wait for that reading and are served its result (or its error), so a burst
of scrapes costs the database one reading, not one each. Nothing is kept once the reading
is done: the next scrape reads afresh, so no value is ever older than its scrape.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class _Flight(Generic[T]):
    """One computation under way: its outcome, once it has one, and who waits for it."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None
        self.waiting = 0


class SingleFlight(Generic[T]):
    """Calls `compute` for the first caller; the callers that arrive before it returns
    wait and get what it returned, or raise what it raised."""

    def __init__(self, compute: Callable[[], T]) -> None:
        self._compute = compute
        self._lock = threading.Lock()
        self._flight: _Flight[T] | None = None

    @property
    def waiting(self) -> int:
        """Callers waiting for the computation under way (0 when none is)."""
        with self._lock:
            return 0 if self._flight is None else self._flight.waiting

    def __call__(self) -> T:
        with self._lock:
            flight = self._flight
            leading = flight is None
            if flight is None:
                flight = self._flight = _Flight()
            else:
                flight.waiting += 1
        return self._lead(flight) if leading else self._follow(flight)

    def _lead(self, flight: _Flight[T]) -> T:
        try:
            flight.result = self._compute()
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            # Later callers start a computation of their own: they asked after this one began.
            with self._lock:
                self._flight = None
            flight.done.set()

    @staticmethod
    def _follow(flight: _Flight[T]) -> T:
        flight.done.wait()
        if flight.error is not None:
            raise flight.error
        return cast(T, flight.result)  # set whenever the error is not
