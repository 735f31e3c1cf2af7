"""One computation for the callers that arrive while it runs: its result or its error for
all of them, and a fresh computation for whoever comes after."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from worker.metrics.single_flight import SingleFlight

CALLERS = 5


class Held:
    """A computation that counts its runs and, until released, does not return."""

    def __init__(self, outcome: Callable[[int], int]) -> None:
        self.runs = 0
        self.release = threading.Event()
        self._outcome = outcome

    def __call__(self) -> int:
        self.runs += 1
        assert self.release.wait(timeout=30)
        return self._outcome(self.runs)


def _call_together(flight: SingleFlight[int], held: Held) -> list[object]:
    """Start CALLERS calls, release the computation once all arrived; what each got."""
    got: list[object] = []

    def call() -> None:
        try:
            got.append(flight())
        except ValueError as exc:
            got.append(exc)

    callers = [threading.Thread(target=call) for _ in range(CALLERS)]
    for caller in callers:
        caller.start()
    deadline = time.monotonic() + 30
    while flight.waiting < CALLERS - 1:
        assert time.monotonic() < deadline, "the callers never all arrived"
        time.sleep(0.005)
    held.release.set()
    for caller in callers:
        caller.join(timeout=30)
    return got


def test_callers_that_arrive_during_a_computation_get_its_result() -> None:
    # Given a computation under way
    held = Held(lambda runs: runs * 100)
    flight = SingleFlight(held)
    # When five callers ask for it together, Then it ran once and each got its result
    assert _call_together(flight, held) == [100] * CALLERS
    assert held.runs == 1
    # And a caller after it is done gets a computation of its own
    assert flight() == 200 and flight.waiting == 0


def test_callers_that_arrive_during_a_failing_computation_get_its_error() -> None:
    # Given a computation that will fail
    def fail(runs: int) -> int:
        raise ValueError(f"database unreachable (run {runs})")

    held = Held(fail)
    flight = SingleFlight(held)
    # When five callers ask for it together, Then each gets the one failure
    got = _call_together(flight, held)
    assert [str(error) for error in got] == ["database unreachable (run 1)"] * CALLERS
    # And the next caller tries again
    with pytest.raises(ValueError, match="run 2"):
        flight()
