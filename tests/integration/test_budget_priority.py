"""A request budget's priority lane: a fresh watch's poll waits for at most one slot however
many full-scan pages queue on the same budget, and full scans get the rest.

Full scans are threads taking the budget in a loop, each through a handle of its own as a
process would, and every grant is written to a log. Where the log must be in Redis's own
order, callers ask the budget one at a time and write the answer before the next may ask:
a thread that writes after its call returns may be overtaken by another thread's call and
write, so "after" in such a log is not "after" in Redis. Where callers go through `acquire`
as pages do, a grant made just before a priority call reached Redis may be written just
after it began, so one full-scan grant is allowed between its start and its return.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import cast

import pytest
import redis

from tests.fakes.dmarket_server import FakeDMarket, ScriptedReply, dmarket_item
from worker import redis_keys
from worker.errors import RateBudgetWait, RetryableMarketError
from worker.markets.dmarket.market import DMarketMarket
from worker.markets.fleet.budget import RequestBudget

API = "https://dmarket.test"
PRIORITY_KEY = f"{redis_keys.BUDGET_PREFIX}{API}:priority"
GRANTS_KEY = f"{redis_keys.BUDGET_PREFIX}{API}:grants"
PAUSED_KEY = f"{redis_keys.BUDGET_PREFIX}{API}:paused"
FULL_SCANS = 16
# Each priority call is checked this many times: a budget without the lane lets a priority
# caller through ahead of the full scans now and then, never every time.
ROUNDS = 3
FULL, START, PRIORITY = "full scan granted", "priority call began", "priority granted"
ITEMS = [dmarket_item(f"dm-{n:03d}", f"AWP | Asiimov #{n}", 500 + n, 600 + n) for n in range(30)]
# A pause far longer than any test waits: the caller must hand it back, not sleep it out.
LONG_PAUSE_SECONDS = 30

Stop = Callable[[], bool]


def never() -> bool:
    return False


class GrantLog:
    """What the callers got from the budget, in the order it was written down."""

    def __init__(self) -> None:
        self.entries: list[str] = []
        self._changed = threading.Condition()

    def record(self, entry: str) -> None:
        with self._changed:
            self.entries.append(entry)
            self._changed.notify_all()

    def wait_for_more(self, entry: str, count: int) -> None:
        """Block until `count` more `entry` have been recorded than now."""
        with self._changed:
            target = self.entries.count(entry) + count
            self._changed.wait_for(lambda: self.entries.count(entry) >= target)

    def full_scans_while_priority_waited(self) -> list[int]:
        """For each priority call (or pair of calls begun together), the full-scan grants
        between its first start and its last grant."""
        counts, waiting_since, waiting = [], 0, 0
        for position, entry in enumerate(self.entries):
            if entry == START:
                if waiting == 0:
                    waiting_since = position
                waiting += 1
            elif entry == PRIORITY:
                waiting -= 1
                if waiting == 0:
                    counts.append(self.entries[waiting_since:position].count(FULL))
        return counts


class InTurn:
    """Callers that ask the budget one at a time and write each answer down before the next
    asks, so the log is in the order Redis granted; between asks each waits as `acquire`
    does, for the time the budget said."""

    def __init__(self, log: GrantLog) -> None:
        self.log = log
        self._asking = threading.Lock()

    def take(self, budget: RequestBudget, stop: Stop = never, *, priority: bool = False) -> None:
        asked = False
        while not stop():
            with self._asking:
                if priority and not asked:
                    self.log.record(START)
                asked = True
                wait_seconds = budget.try_acquire(priority)
                if wait_seconds == 0:
                    self.log.record(PRIORITY if priority else FULL)
                    return
            time.sleep(wait_seconds)


@contextlib.contextmanager
def full_scans(takers: list[Callable[[Stop], object]]) -> Iterator[None]:
    """Run each taker in a loop on a thread of its own until the block ends;
    `taker(stop)` takes one slot (or stops waiting once `stop()` says so) and logs it."""
    stopping = threading.Event()
    failures: list[BaseException] = []

    def loop(take: Callable[[Stop], object]) -> None:
        try:
            while not stopping.is_set():
                take(stopping.is_set)
        except RateBudgetWait:
            if not stopping.is_set():
                failures.append(RuntimeError("a full scan was handed a wait back"))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=loop, args=(take,), daemon=True) for take in takers]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stopping.set()
        for thread in threads:
            thread.join()
    assert failures == []


def budget_of(redis_url: str, requests_per_second: float) -> RequestBudget:
    """A handle on the shared budget, as one process holds it."""
    return RequestBudget(redis.Redis.from_url(redis_url), API, requests_per_second)


def full_scans_in_turn(turns: InTurn, redis_url: str) -> list[Callable[[Stop], object]]:
    """Full scans taking a budget of 2 requests/s, each through a handle of its own."""

    def full_scan() -> Callable[[Stop], object]:
        budget = budget_of(redis_url, 2.0)
        return lambda stop: turns.take(budget, stop)

    return [full_scan() for _ in range(FULL_SCANS)]


def test_once_a_priority_caller_has_asked_no_full_scan_is_granted_before_it(
    redis_url: str,
) -> None:
    # Given 16 full scans taking a budget of 2 requests/s in a loop
    turns = InTurn(GrantLog())
    fresh = budget_of(redis_url, 2.0)
    client = redis.Redis.from_url(redis_url)
    marks_left = []
    with full_scans(full_scans_in_turn(turns, redis_url)):
        turns.log.wait_for_more(FULL, 4)
        for _ in range(ROUNDS):
            # When a fresh watch asks the same budget
            turns.take(fresh, priority=True)
            marks_left.append(client.zcard(PRIORITY_KEY))
            # (and the full scans get the slots after it)
            turns.log.wait_for_more(FULL, 2)
    # Then Redis granted it the first slot after it asked, each time
    assert turns.log.full_scans_while_priority_waited() == [0] * ROUNDS, turns.log.entries
    # and, once granted, it left no mark to hold the full scans back
    assert marks_left == [0] * ROUNDS


def test_two_priority_callers_at_once_both_get_through_ahead_of_the_full_scans(
    redis_url: str,
) -> None:
    # Given 16 full scans taking a budget of 2 requests/s in a loop
    turns = InTurn(GrantLog())
    # (two fresh watches in two threads of one process share its handle)
    fresh = budget_of(redis_url, 2.0)
    with full_scans(full_scans_in_turn(turns, redis_url)):
        turns.log.wait_for_more(FULL, 4)
        for _ in range(ROUNDS):
            # When two fresh watches ask at once
            callers = [
                threading.Thread(target=turns.take, args=(fresh,), kwargs={"priority": True})
                for _ in range(2)
            ]
            for caller in callers:
                caller.start()
            for caller in callers:
                caller.join()
            turns.log.wait_for_more(FULL, 2)
    # Then both were granted each time, before any full scan
    assert turns.log.entries.count(PRIORITY) == 2 * ROUNDS
    assert set(turns.log.full_scans_while_priority_waited()) == {0}, turns.log.entries
    assert redis.Redis.from_url(redis_url).exists(PRIORITY_KEY) == 0


def test_the_mark_of_a_priority_waiter_that_died_lapses_and_full_scans_go_on(
    redis_url: str,
) -> None:
    client = redis.Redis.from_url(redis_url)
    # Given a budget of 2 requests/s spent by a full scan
    full_scan = budget_of(redis_url, 2.0)
    assert [full_scan.try_acquire(), full_scan.try_acquire()] == [0.0, 0.0]
    # and a priority caller in another process that was refused, and died without asking again
    assert budget_of(redis_url, 2.0).try_acquire(priority=True) > 0
    [lapses_at_us] = scores_of(client, PRIORITY_KEY)
    # When the full scan asks for its next slot
    full_scan.acquire(never)
    # Then it is granted, though only once the dead waiter's mark had lapsed (both times
    # are on Redis's clock), and the mark is gone
    granted_at_us = max(scores_of(client, GRANTS_KEY))
    assert granted_at_us >= lapses_at_us
    assert client.exists(PRIORITY_KEY) == 0


def scores_of(client: redis.Redis, key: str) -> list[float]:
    """The scores of a sorted set: the times, in microseconds of Redis's clock, it holds."""
    members = cast("list[tuple[bytes, float]]", client.zrange(key, 0, -1, withscores=True))
    return [score for _, score in members]


def test_a_short_pause_holds_the_priority_lane_until_it_ends(redis_url: str) -> None:
    # Given the API paused for half a second (a 429 asked for it)
    budget = budget_of(redis_url, 2.0)
    budget.pause(0.5)
    # When a fresh watch polls
    budget.acquire(never, priority=True)
    # Then it was granted only after the pause had ended
    assert redis.Redis.from_url(redis_url).exists(PAUSED_KEY) == 0


def test_a_long_pause_is_handed_back_to_a_fresh_watch_which_takes_its_mark_with_it(
    redis_url: str,
) -> None:
    with FakeDMarket(ITEMS) as fake:
        # Given a full scan was told "429, retry after 30 s"
        fake.script(0, ScriptedReply.rate_limited(retry_after=str(LONG_PAUSE_SECONDS)))
        with (
            market_of(fake, budget_of(redis_url, 50.0)) as full_scan,
            pytest.raises(RetryableMarketError),
        ):
            full_scan.fetch_page(None, 5)
        # When a fresh watch asks for the listing
        with (
            market_of(fake, budget_of(redis_url, 50.0), priority=True) as fresh,
            pytest.raises(RateBudgetWait) as waited,
        ):
            fresh.fetch_page(None, 5)
        # Then it sent nothing and handed the pause back, not counted as a retry
        assert len(fake.requests) == 1
    assert waited.value.counts_as_retry is False
    assert waited.value.retry_after_seconds is not None
    assert LONG_PAUSE_SECONDS - 5 < waited.value.retry_after_seconds <= LONG_PAUSE_SECONDS
    # and no mark of it holds the full scans back once the pause is over
    assert redis.Redis.from_url(redis_url).exists(PRIORITY_KEY) == 0


def market_of(
    fake: FakeDMarket,
    budget: RequestBudget,
    *,
    priority: bool = False,
    drain_requested: Stop = never,
) -> DMarketMarket:
    """A market made for one page, as a page task makes it."""
    return DMarketMarket(
        base_url=fake.url,
        game="csgo",
        budget=budget,
        drain_requested=drain_requested,
        priority=priority,
    )


def page_tasks(fake: FakeDMarket, redis_url: str, log: GrantLog) -> list[Callable[[Stop], object]]:
    """Full-scan page tasks on a budget of 1 request/s, each fetching one page per market
    it makes and logging it once fetched."""

    def page_task() -> Callable[[Stop], object]:
        budget = budget_of(redis_url, 1.0)

        def fetch(stop: Stop) -> None:
            with market_of(fake, budget, drain_requested=stop) as market:
                market.fetch_page(None, 5)
            log.record(FULL)

        return fetch

    return [page_task() for _ in range(FULL_SCANS)]


def test_a_fresh_watchs_market_waits_for_at_most_one_full_scan_page(redis_url: str) -> None:
    log = GrantLog()
    with FakeDMarket(ITEMS) as fake:
        # Given 16 full-scan page tasks fetching DMarket's listing on a budget of 1 request/s
        fresh_budget = budget_of(redis_url, 1.0)
        with full_scans(page_tasks(fake, redis_url, log)):
            log.wait_for_more(FULL, 2)
            for _ in range(ROUNDS):
                # When a fresh watch's market asks for the listing
                with market_of(fake, fresh_budget, priority=True) as fresh:
                    log.record(START)
                    fresh.fetch_page(None, 5)
                    log.record(PRIORITY)
                log.wait_for_more(FULL, 1)
    # Then each of its pages came with at most one full-scan page between its start and
    # its return
    waited = log.full_scans_while_priority_waited()
    assert len(waited) == ROUNDS
    assert all(count <= 1 for count in waited), (waited, log.entries)
