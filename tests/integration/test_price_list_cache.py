"""A second market's price list across the fleet: one fetch per life however many threads
and processes ask at once; a failed fetch keeps nothing and frees the next asker at once; a
dead fetcher's claim lapses; a reader sees a whole list, never half of one; odd titles read
back as stored. Against a real Redis."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import socket
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier

import pytest
import redis

from worker import redis_keys
from worker.domain.price_list import MarketPrice, PriceList
from worker.errors import RateBudgetWait, RetryableMarketError
from worker.markets.second_market import cache as price_list_cache
from worker.markets.second_market.cache import SharedPriceList
from worker.testing.memory_price_list import MemoryPriceList

LIFE = 300.0
SCOPE = "730:USD"
AK = "AK-47 | Redline (Field-Tested)"
KARAMBIT = "★ Karambit | Doppler (Factory New)"
PRICES: dict[str, tuple[int | None, int | None]] = {
    AK: (1234, 57),
    "AWP | Asiimov (Battle-Scarred)": (None, 3),
    "Sticker | Crown (Foil)": (99_000, None),
}
# The test's own counter of every process's fetches, outside marketscan's keys.
FLEET_FETCHES = "test:pricelist:fetches"
BASE = f"{redis_keys.PRICE_LIST_PREFIX}memory:{SCOPE}:"


class Clock:
    """A clock the test moves: the list's life is judged on it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FleetSource:
    """A MemoryPriceList whose fetches are counted in Redis (the whole fleet's, where its own
    counter is its process's), read at `clock()`, each taking `delay_seconds`."""

    def __init__(
        self,
        client: redis.Redis,
        inner: MemoryPriceList,
        clock: Callable[[], float] = time.time,
        delay_seconds: float = 0.0,
        during: Callable[[], object] | None = None,
    ) -> None:
        self.market = inner.market
        self.inner = inner
        self._client = client
        self._clock = clock
        self._delay_seconds = delay_seconds
        self._during = during

    def fetch(self) -> PriceList:
        self._client.incr(FLEET_FETCHES)
        if self._during is not None:
            self._during()
        time.sleep(self._delay_seconds)
        return dataclasses.replace(self.inner.fetch(), fetched_at=self._clock())


class Refusing:
    """A source for askers that must only read: a fetch fails the test."""

    market = "memory"

    def fetch(self) -> PriceList:
        raise AssertionError("an asker fetched that should only have read")


def pointer_of(client: redis.Redis) -> dict[str, object]:
    raw = client.get(BASE + "pointer")
    assert raw is not None
    pointer: dict[str, object] = json.loads(raw)
    return pointer


def fleet_fetches(client: redis.Redis) -> int:
    return int(client.get(FLEET_FETCHES) or 0)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def list_keys(client: redis.Redis) -> list[str]:
    return sorted(key.decode() for key in client.scan_iter(f"{redis_keys.PRICE_LIST_PREFIX}*"))


def test_a_stored_list_serves_later_askers_until_its_life_lapses_then_one_fetch(
    client: redis.Redis,
) -> None:
    clock = Clock(time.time())
    market = MemoryPriceList(PRICES)
    source = FleetSource(client, market, clock)
    first = SharedPriceList(client, "memory", SCOPE, LIFE, clock=clock)

    # Given a list read once
    fetched_at, prices = first.prices([AK, "Not Listed"], source)
    assert fetched_at == clock.now
    assert prices == {AK: MarketPrice(1234, 57), "Not Listed": None}
    # and stored as one generation's hash, and a pointer to it, both kept for a while only
    pointer = pointer_of(client)
    assert pointer == {
        "generation": pointer["generation"],
        "fetched_at": clock.now,
        "skipped": 0,
        "count": 3,
    }
    assert list_keys(client) == [f"{BASE}list:{pointer['generation']}", f"{BASE}pointer"]
    assert 0 < client.pttl(BASE + "pointer") < client.pttl(f"{BASE}list:{pointer['generation']}")

    # When other askers ask within its life
    clock.now += LIFE - 1
    other = SharedPriceList(client, "memory", SCOPE, LIFE, clock=clock)
    again = other.prices(["AWP | Asiimov (Battle-Scarred)", "Sticker | Crown (Foil)"], source)
    # Then they read it without fetching
    assert again == (
        fetched_at,
        {
            "AWP | Asiimov (Battle-Scarred)": MarketPrice(None, 3),
            "Sticker | Crown (Foil)": MarketPrice(99_000, None),
        },
    )
    assert (first.fetches, other.fetches, market.fetches) == (0 + 1, 0, 1)

    # When the market's list changes and the life lapses
    market.prices[AK] = (1200, 60)
    clock.now = fetched_at + LIFE
    renewed = other.prices([AK], source)
    # Then exactly one asker fetches again, and the new read is what every asker gets
    assert renewed == (clock.now, {AK: MarketPrice(1200, 60)})
    assert first.prices([AK], source) == renewed
    assert other.prices([AK], source) == renewed
    assert (first.fetches, other.fetches, market.fetches) == (1, 1, 2)


def test_twelve_threads_asking_at_once_cost_one_fetch(client: redis.Redis) -> None:
    # Given a market whose list takes a moment to come
    market = MemoryPriceList(PRICES)
    source = FleetSource(client, market, delay_seconds=0.5)
    askers = 12
    start = threading.Barrier(askers)
    answers: list[tuple[float, dict[str, MarketPrice | None]]] = []

    def ask() -> None:
        cache = SharedPriceList(client, "memory", SCOPE, LIFE)
        start.wait()
        answers.append(cache.prices([AK], source))

    # When twelve askers ask at the same moment
    threads = [threading.Thread(target=ask) for _ in range(askers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then the list was fetched once, and every asker has the same read
    assert market.fetches == 1 and fleet_fetches(client) == 1
    assert len(answers) == askers
    assert {fetched_at for fetched_at, _ in answers} == {answers[0][0]}
    assert all(prices == {AK: MarketPrice(1234, 57)} for _, prices in answers)


def _ask_in_a_process(redis_url: str, start: Barrier, found: Queue[tuple[float, int, int]]) -> None:
    client = redis.Redis.from_url(redis_url)
    source = FleetSource(client, MemoryPriceList(PRICES), delay_seconds=0.5)
    cache = SharedPriceList(client, "memory", SCOPE, LIFE)
    start.wait()
    fetched_at, prices = cache.prices(list(PRICES), source)
    found.put((fetched_at, sum(price is not None for price in prices.values()), cache.fetches))
    client.close()


def test_askers_in_other_processes_wait_for_the_one_fetch(
    client: redis.Redis, redis_url: str
) -> None:
    context = multiprocessing.get_context("spawn")
    askers = 4
    start = context.Barrier(askers)
    found: Queue[tuple[float, int, int]] = context.Queue()
    # When four processes, each with its own Redis client and source, ask at the same moment
    processes = [
        context.Process(target=_ask_in_a_process, args=(redis_url, start, found))
        for _ in range(askers)
    ]
    for process in processes:
        process.start()
    answers = [found.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    # Then the list was fetched once across them, and each has the same read of it
    assert [process.exitcode for process in processes] == [0] * askers
    assert fleet_fetches(client) == 1
    assert sorted(fetches for _, _, fetches in answers) == [0, 0, 0, 1]
    assert len({(fetched_at, listed) for fetched_at, listed, _ in answers}) == 1
    assert answers[0][1] == len(PRICES)


def test_a_failed_fetch_keeps_nothing_and_the_next_asker_fetches_at_once(
    client: redis.Redis,
) -> None:
    # Given a market whose next fetch fails
    market = MemoryPriceList(PRICES)
    market.fail_next()
    cache = SharedPriceList(client, "memory", SCOPE, LIFE)
    # When the list is asked for, Then the market's retryable error passes through
    with pytest.raises(RetryableMarketError, match="price list told to fail"):
        cache.prices([AK], market)
    # and nothing is stored, and no claim stands in the next asker's way
    assert client.get(BASE + "pointer") is None
    assert not [key for key in list_keys(client) if ":list:" in key]
    assert client.get(BASE + "claim") is None
    # When another asker asks, Then it fetches at once and stores the list
    other = SharedPriceList(client, "memory", SCOPE, LIFE)
    assert other.prices([AK], market)[1] == {AK: MarketPrice(1234, 57)}
    assert (cache.fetches, other.fetches, market.fetches) == (1, 1, 2)
    assert client.get(BASE + "pointer") is not None


def test_askers_waiting_on_a_fetch_that_fails_fail_with_it_instead_of_fetching(
    client: redis.Redis,
) -> None:
    # Given a fetch that fails once every other asker is waiting on its claim
    market = MemoryPriceList(PRICES)
    market.fail_next()
    waiters = 3
    waiting = threading.Barrier(waiters + 1)
    waiter_caches = [
        SharedPriceList(client, "memory", SCOPE, LIFE, sleep=lambda seconds: waiting_sleep())
        for _ in range(waiters)
    ]
    arrived: set[int] = set()
    arrived_lock = threading.Lock()

    def waiting_sleep() -> None:
        # Each waiter's first poll meets the fetcher at the barrier: all wait before it fails.
        me = threading.get_ident()
        with arrived_lock:
            first = me not in arrived
            arrived.add(me)
        if first:
            waiting.wait()
        time.sleep(0.01)

    def first_fetch_waits_for_the_waiters() -> None:
        # Only the first: a waiter fetching in turn (the fault this test looks for) must not
        # hang on the barrier, but be counted.
        if market.fetches == 0:
            waiting.wait()

    source = FleetSource(client, market, during=first_fetch_waits_for_the_waiters)
    fetcher = SharedPriceList(client, "memory", SCOPE, LIFE)
    errors: list[str] = []

    def wait_for_it(cache: SharedPriceList) -> None:
        try:
            cache.prices([AK], source)
        except RetryableMarketError as exc:
            errors.append(str(exc))

    fetching = threading.Thread(target=wait_for_it, args=(fetcher,))
    fetching.start()
    while client.get(BASE + "claim") is None:
        time.sleep(0.01)
    threads = [threading.Thread(target=wait_for_it, args=(cache,)) for cache in waiter_caches]
    for thread in threads:
        thread.start()
    for thread in [fetching, *threads]:
        thread.join()

    # Then the one fetch failed, and its waiters failed with it, none fetching in turn
    assert fleet_fetches(client) == 1 and market.fetches == 1
    assert len(errors) == waiters + 1
    assert sum("another process's fetch" in error for error in errors) == waiters
    assert client.get(BASE + "claim") is None
    # When a new asker comes, Then it fetches at once
    again = FleetSource(client, market)
    assert SharedPriceList(client, "memory", SCOPE, LIFE).prices([AK], again)[1] == {
        AK: MarketPrice(1234, 57)
    }
    assert fleet_fetches(client) == 2


def test_a_dead_fetchers_claim_is_waited_out_then_one_asker_fetches(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a short claim, and one taken by a fetcher that died
    monkeypatch.setattr(price_list_cache, "CLAIM_SECONDS", 2.0)
    client.set(BASE + "claim", "dead-fetcher", px=1000)
    market = MemoryPriceList(PRICES)
    claims_at_fetch: list[bytes | str | None] = []
    source = FleetSource(
        client, market, during=lambda: claims_at_fetch.append(client.get(BASE + "claim"))
    )
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        time.sleep(seconds)

    askers = 3
    answers: list[dict[str, MarketPrice | None]] = []

    def ask() -> None:
        answers.append(
            SharedPriceList(client, "memory", SCOPE, LIFE, sleep=sleep).prices([AK], source)[1]
        )

    # When askers come while the dead claim stands
    threads = [threading.Thread(target=ask) for _ in range(askers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then they waited, none fetching under the dead claim; once it lapsed, one fetched
    assert polls
    assert market.fetches == 1
    assert claims_at_fetch and claims_at_fetch[0] not in (None, b"dead-fetcher")
    assert answers == [{AK: MarketPrice(1234, 57)}] * askers


def test_a_waiter_gives_up_after_two_claims_lives(
    client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a short claim, held by a fetcher that renews it and never stores
    monkeypatch.setattr(price_list_cache, "CLAIM_SECONDS", 0.5)
    client.set(BASE + "claim", "stuck-fetcher")
    market = MemoryPriceList(PRICES)
    # When an asker asks, Then it waits two claims' lives and fails retryably, not fetching
    with pytest.raises(RetryableMarketError, match="waited 1s for another process's fetch"):
        SharedPriceList(client, "memory", SCOPE, LIFE).prices([AK], market)
    assert market.fetches == 0


def test_a_waiter_hands_its_page_back_when_the_worker_drains(client: redis.Redis) -> None:
    # Given another process's fetch under way (its claim stands), and a worker that drains
    client.set(BASE + "claim", "busy-fetcher")
    market = MemoryPriceList(PRICES)
    draining = threading.Event()
    draining.set()
    shared = SharedPriceList(client, "memory", SCOPE, LIFE, should_stop=draining.is_set)
    # When an asker asks, Then it stops waiting at once, as a budget wait does, not fetching
    with pytest.raises(RateBudgetWait, match="when the worker began to drain"):
        shared.prices([AK], market)
    assert market.fetches == 0


def test_a_reader_sees_the_old_list_or_the_new_one_never_half_of_one(
    client: redis.Redis,
) -> None:
    # Given a stored list of 20,000 titles, each at 100 cents
    titles = [f'Item {n:05d} | "odd": ★' for n in range(20_000)]
    clock = Clock(time.time())
    market = MemoryPriceList(dict.fromkeys(titles, (100, 1)))
    source = FleetSource(client, market, clock)
    SharedPriceList(client, "memory", SCOPE, LIFE, clock=clock).prices([], source)
    old_fetched_at = clock.now
    # and a reader on a clock at which it stays fresh, reading titles from the whole list
    page = [*titles[::250], titles[-1]]
    reads: list[tuple[float, set[MarketPrice | None]]] = []
    done = threading.Event()

    def read() -> None:
        # It polls without pause, so that it reads while the new list is being written.
        reader = SharedPriceList(
            client, "memory", SCOPE, LIFE, clock=lambda: old_fetched_at, sleep=lambda _: None
        )
        while not done.is_set():
            fetched_at, prices = reader.prices(page, Refusing())
            reads.append((fetched_at, set(prices.values())))
        # and once after the new list was stored
        fetched_at, prices = reader.prices(page, Refusing())
        reads.append((fetched_at, set(prices.values())))

    reading = threading.Thread(target=read)
    reading.start()
    # When the life lapses for another asker and it fetches the list at 200 cents
    while not reads:
        time.sleep(0.001)
    market.prices = dict.fromkeys(titles, (200, 2))
    clock.now += LIFE
    writer = SharedPriceList(client, "memory", SCOPE, LIFE, clock=clock)
    writer.prices([titles[0]], source)
    done.set()
    reading.join()

    # Then every read was the whole old list or the whole new one
    old = (old_fetched_at, {MarketPrice(100, 1)})
    new = (clock.now, {MarketPrice(200, 2)})
    assert all(one_read in (old, new) for one_read in reads)
    assert reads[0] == old and reads[-1] == new
    assert writer.fetches == 1


def test_an_empty_list_is_stored_and_served(client: redis.Redis) -> None:
    # Given a market listing nothing
    market = MemoryPriceList({})
    clock = Clock(time.time())
    source = FleetSource(client, market, clock)
    # When it is read, Then every title is off the list, and later askers do not fetch
    assert SharedPriceList(client, "memory", SCOPE, LIFE, clock=clock).prices([AK], source) == (
        clock.now,
        {AK: None},
    )
    assert SharedPriceList(client, "memory", SCOPE, LIFE, clock=clock).prices([AK], source) == (
        clock.now,
        {AK: None},
    )
    assert market.fetches == 1
    assert pointer_of(client)["count"] == 0


def test_titles_with_odd_characters_read_back_as_stored(client: redis.Redis) -> None:
    odd = {
        KARAMBIT: (150_000, 12),
        "StatTrak™ M4A4 | 龍王 (Dragon King) (Minimal Wear)": (2500, 40),
        'Sticker | "Quoted" : colon:separated': (3, None),
        "Name with\nnewline and \\ backslash": (None, None),
        "": (1, 1),
    }
    market = MemoryPriceList(odd)
    cache = SharedPriceList(client, "memory", SCOPE, LIFE)
    # When the list is read, then read again from Redis
    cache.prices([], market)
    _, prices = SharedPriceList(client, "memory", SCOPE, LIFE).prices([*odd, "★ Karambit"], market)
    # Then each title has its own price, and a title only like one is not on the list
    assert prices == {
        **{title: MarketPrice(*price) for title, price in odd.items()},
        "★ Karambit": None,
    }
    assert market.fetches == 1


def test_redis_unreachable_is_a_retryable_error_and_the_market_is_not_asked() -> None:
    # Given a Redis client pointed at a port nothing listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    market = MemoryPriceList(PRICES)
    # When the list is asked for, Then the error is retryable, and the market untouched
    with pytest.raises(RetryableMarketError, match="memory price list unreachable in Redis"):
        SharedPriceList(client, "memory", SCOPE, LIFE).prices([AK], market)
    assert market.fetches == 0
    client.close()


class _WithSkipped:
    """A market whose answer left out two items for a price that was no price."""

    market = "memory"

    def fetch(self) -> PriceList:
        return PriceList("memory", "USD", time.time(), {AK: MarketPrice(1_234, 5)}, skipped=2)


def test_items_skipped_for_their_price_are_counted_and_said(
    client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a list whose reader skipped two items, When it is read for the fleet
    with caplog.at_level("WARNING"):
        found = SharedPriceList(client, "memory", SCOPE, LIFE).prices([AK], _WithSkipped())
    # Then the rest is served, the pointer counts the skipped, and the log says so
    assert found[1] == {AK: MarketPrice(1_234, 5)}
    assert pointer_of(client)["skipped"] == 2
    assert "memory price list: 2 of 3 items skipped" in caplog.text
