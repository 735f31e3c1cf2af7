"""The per-process heartbeat thread: each page keeps its own renewals and its own "lost"
signal, one thread serves them all, and a forked child beats with a thread of its own.

Renewals here are plain callables (what the page runner hands in is a fenced UPDATE);
intervals are short so the tests wait little, and every wait has a generous timeout.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import threading
from collections.abc import Callable

from worker.chain.heartbeat import Heartbeat

INTERVAL_S = 0.01
PATIENCE_S = 30.0


def _heartbeat_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "page-heartbeat"]


class _Renewals:
    """Counts renewals; misses (the page was taken) from the `miss_at`-th one on."""

    def __init__(self, miss_at: int | None = None) -> None:
        self.count = 0
        self.miss_at = miss_at
        self.reached = threading.Event()

    def __call__(self) -> bool:
        self.count += 1
        if self.count >= 3:
            self.reached.set()
        return self.miss_at is None or self.count < self.miss_at


def test_one_thread_beats_for_every_page_of_the_process() -> None:
    # Given two pages running at once, then a third after them
    first, second, third = _Renewals(), _Renewals(), _Renewals()
    with Heartbeat(first, INTERVAL_S), Heartbeat(second, INTERVAL_S):
        assert first.reached.wait(PATIENCE_S) and second.reached.wait(PATIENCE_S)
        beating = _heartbeat_threads()
    with Heartbeat(third, INTERVAL_S):
        assert third.reached.wait(PATIENCE_S)
    # Then one and the same thread renewed them all, and it outlives the pages
    assert len(beating) == 1
    assert _heartbeat_threads() == beating


def _until(condition: Callable[[], bool]) -> bool:
    for _ in range(int(PATIENCE_S / INTERVAL_S)):
        if condition():
            return True
        threading.Event().wait(INTERVAL_S)
    return False


def test_a_missed_renewal_marks_only_its_own_page_lost() -> None:
    # Given two pages, one of which is taken from its worker at its second renewal
    taken, kept = _Renewals(miss_at=2), _Renewals()
    with Heartbeat(taken, INTERVAL_S) as taken_beat, Heartbeat(kept, INTERVAL_S) as kept_beat:
        assert _until(lambda: taken_beat.lost)
        # Then the taken page is no longer renewed, and the other one goes on, not lost
        kept_then = kept.count
        assert _until(lambda: kept.count >= kept_then + 3)
        assert taken.count == 2 and not kept_beat.lost


def test_a_page_due_sooner_than_the_thread_sleeps_is_renewed_in_time() -> None:
    # Given the thread asleep until a slow page's renewal, far off
    slow, quick = _Renewals(), _Renewals()
    with Heartbeat(slow, 1000.0):
        assert _until(lambda: bool(_heartbeat_threads()))
        # When a page due much sooner comes, Then the thread wakes up for it
        with Heartbeat(quick, INTERVAL_S):
            assert quick.reached.wait(PATIENCE_S)
    assert slow.count == 0


def test_a_stopped_heartbeat_renews_no_more() -> None:
    renewals = _Renewals()
    with Heartbeat(renewals, INTERVAL_S) as beat:
        assert renewals.reached.wait(PATIENCE_S)
    stopped_at = renewals.count
    other = _Renewals()
    with Heartbeat(other, INTERVAL_S):  # the thread keeps beating, for others only
        assert other.reached.wait(PATIENCE_S)
    assert renewals.count == stopped_at and not beat.lost


def _child_beats(done: multiprocessing.synchronize.Event) -> None:
    lost = _Renewals(miss_at=1)
    with Heartbeat(lost, INTERVAL_S) as beat:
        for _ in range(int(PATIENCE_S / INTERVAL_S)):
            if beat.lost:
                done.set()
                return
            threading.Event().wait(INTERVAL_S)


def test_a_forked_child_beats_with_a_thread_of_its_own() -> None:
    # Given a process whose heartbeat thread is running
    with Heartbeat(_Renewals(), INTERVAL_S):
        assert _heartbeat_threads()
        # When it forks a pool child that runs a page, Then the child's page is renewed
        # (here: found lost at its first renewal), by a thread started in the child
        fork = multiprocessing.get_context("fork")
        done = fork.Event()
        child = fork.Process(target=_child_beats, args=(done,))
        child.start()
        child.join(PATIENCE_S + 10)
    assert done.is_set() and child.exitcode == 0
