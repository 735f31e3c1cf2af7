"""A slice's bounds, on a clock the test moves: pages, the backlog bound, the slice bound."""

from __future__ import annotations

import uuid
from dataclasses import replace

from worker.chain.slice import PageSlice
from worker.domain.page_message import PageMessage
from worker.settings import Settings


class _Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


class _Queue:
    """Answers whether others wait, counting how often it was asked."""

    def __init__(self, waiting: bool) -> None:
        self.waiting = waiting
        self.asked = 0

    def __call__(self) -> bool:
        self.asked += 1
        return self.waiting


def _slice(clock: _Clock, **bounds: int) -> PageSlice:
    settings = replace(Settings(), **bounds)
    return PageSlice(PageMessage(uuid.uuid4(), uuid.uuid4(), 0, 0), settings, clock)


def test_inside_the_backlog_bound_a_slice_has_room_without_asking_the_queue() -> None:
    clock, queue = _Clock(), _Queue(waiting=True)
    pages = _slice(clock, slice_pages=10, slice_ms=10_000, slice_backlog_ms=300)
    clock.now_s += 0.1
    # 100 ms into a page, one more like it ends at 200 ms, inside the 300 ms bound
    assert pages.has_room(queue) and queue.asked == 0


def test_past_the_backlog_bound_a_waiting_queue_ends_the_slice() -> None:
    clock, queue = _Clock(), _Queue(waiting=True)
    pages = _slice(clock, slice_pages=10, slice_ms=10_000, slice_backlog_ms=300)
    clock.now_s += 0.3
    assert not pages.has_room(queue) and queue.asked == 1
    queue.waiting = False
    assert pages.has_room(queue)


def test_past_the_slice_bound_nothing_has_room_even_with_nobody_waiting() -> None:
    clock, queue = _Clock(), _Queue(waiting=False)
    pages = _slice(clock, slice_pages=10, slice_ms=1_000, slice_backlog_ms=300)
    clock.now_s += 1.0
    assert not pages.has_room(queue)


def test_the_backlog_bound_never_outlasts_the_slice_bound() -> None:
    clock, queue = _Clock(), _Queue(waiting=True)
    pages = _slice(clock, slice_pages=10, slice_ms=200, slice_backlog_ms=300)
    clock.now_s += 0.2
    assert not pages.has_room(queue)


def test_the_page_bound_holds_inside_the_backlog_bound() -> None:
    clock, queue = _Clock(), _Queue(waiting=False)
    pages = _slice(clock, slice_pages=2, slice_ms=10_000, slice_backlog_ms=10_000)
    assert pages.has_room(queue)
    pages.advance()
    assert not pages.has_room(queue)


def test_a_backlog_bound_of_zero_asks_the_queue_before_every_page() -> None:
    clock, queue = _Clock(), _Queue(waiting=True)
    pages = _slice(clock, slice_pages=10, slice_ms=10_000, slice_backlog_ms=0)
    assert not pages.has_room(queue) and queue.asked == 1


def test_a_page_judged_past_the_backlog_bound_asks_the_queue_before_the_next() -> None:
    # Given a slice that started its prefetch inside the backlog bound, without asking
    clock, queue = _Clock(), _Queue(waiting=True)
    pages = _slice(clock, slice_pages=10, slice_ms=10_000, slice_backlog_ms=300)
    assert pages.has_room(queue) and queue.asked == 0
    # When judging the page takes it past the bound, Then the queue is asked, and a
    # waiting one ends the slice
    clock.now_s += 0.5
    assert not pages.still_has_room(queue) and queue.asked == 1


def test_a_page_judged_inside_the_backlog_bound_walks_on_without_asking() -> None:
    clock, queue = _Clock(), _Queue(waiting=True)
    pages = _slice(clock, slice_pages=10, slice_ms=10_000, slice_backlog_ms=300)
    assert pages.has_room(queue)
    clock.now_s += 0.1
    assert pages.still_has_room(queue) and queue.asked == 0


def test_a_queue_asked_before_the_prefetch_is_not_asked_again() -> None:
    clock, queue = _Clock(), _Queue(waiting=False)
    pages = _slice(clock, slice_pages=10, slice_ms=10_000, slice_backlog_ms=300)
    clock.now_s += 0.4
    assert pages.has_room(queue) and queue.asked == 1
    queue.waiting = True
    assert pages.still_has_room(queue) and queue.asked == 1


def test_a_page_that_would_end_past_the_backlog_bound_is_not_started_unasked() -> None:
    # Given a 50 ms backlog bound and a first page that took 20 ms, then a second of 20 ms
    clock, queue = _Clock(), _Queue(waiting=True)
    pages = _slice(clock, slice_pages=10, slice_ms=10_000, slice_backlog_ms=50)
    clock.now_s += 0.020
    assert pages.has_room(queue) and queue.asked == 0
    pages.advance()
    clock.now_s += 0.020
    # When the slice is at 40 ms, inside its bound but with no room for another 20 ms page
    # Then the queue is asked, and a waiting one ends the slice rather than outrun 50 ms
    assert not pages.has_room(queue) and queue.asked == 1


def test_a_page_judged_near_the_backlog_bound_asks_the_queue_before_the_next() -> None:
    # Given a slice whose first page was judged at 30 ms of a 50 ms bound
    clock, queue = _Clock(), _Queue(waiting=True)
    pages = _slice(clock, slice_pages=10, slice_ms=10_000, slice_backlog_ms=50)
    clock.now_s += 0.010
    assert pages.has_room(queue) and queue.asked == 0
    clock.now_s += 0.020
    # When the next page would take as long, Then a waiting queue ends the slice
    assert not pages.still_has_room(queue) and queue.asked == 1


def test_a_slice_bound_is_not_outrun_by_a_page_started_inside_it() -> None:
    clock, queue = _Clock(), _Queue(waiting=False)
    pages = _slice(clock, slice_pages=10, slice_ms=1_000, slice_backlog_ms=300)
    clock.now_s += 0.6
    pages.advance()
    clock.now_s += 0.3
    # At 900 ms of a 1 s slice whose last page took 300 ms, nothing has room
    assert not pages.has_room(queue)
