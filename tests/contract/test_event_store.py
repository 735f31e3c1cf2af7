"""The metrics notes store, over every implementation: Redis (the suite's real one) and
memory. Notes flushed from several processes add up, once each, and decode back into the
counters and cumulative histograms the exporter serves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from worker import observe
from worker.metrics import events


@pytest.fixture(params=["redis", "memory"])
def store(request: pytest.FixtureRequest) -> Iterator[events.EventStore]:
    if request.param == "memory":
        yield events.MemoryEventStore()
        return
    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield events.RedisEventStore(client)
    client.close()


@pytest.fixture(autouse=True)
def _no_leftover_notes() -> Iterator[None]:
    observe.drain()
    yield
    observe.drain()


def test_flushes_add_up_and_each_note_is_flushed_once(store: events.EventStore) -> None:
    # Given notes from two flushes, as two pool children would make them
    observe.market_request("dmarket", "market_items", 200)
    observe.market_request("dmarket", "market_items", 429)
    observe.stale_dropped()
    events.flush(store)
    observe.market_request("dmarket", "market_items", 200)
    events.flush(store)
    # When a third flush finds nothing new
    events.flush(store)
    # Then each note counts exactly once
    counters = events.snapshot(store.fields()).counters
    ok = (("market", "dmarket"), ("endpoint", "market_items"), ("code", "200"))
    limited = (("market", "dmarket"), ("endpoint", "market_items"), ("code", "429"))
    assert counters[(observe.MARKET_REQUESTS, ok)] == 2
    assert counters[(observe.MARKET_REQUESTS, limited)] == 1
    assert counters[(observe.STALE_MESSAGES, ())] == 1


def test_durations_decode_into_cumulative_buckets_with_sum_and_count(
    store: events.EventStore,
) -> None:
    # Given page phases of 3 ms, 40 ms and 100 s (past the last bucket)
    for seconds in (0.003, 0.04, 100.0):
        observe.page_phase("fetch", seconds)
    observe.budget_wait(0.0)
    events.flush(store)
    # Then the histogram is cumulative, ends at +Inf with every observation, and sums them
    histograms = events.snapshot(store.fields()).histograms
    fetch = histograms[(observe.PAGE_PHASE, (("phase", "fetch"),))]
    bounds = dict(fetch.buckets)
    assert bounds["0.001"] == 0
    assert bounds["0.005"] == 1
    assert bounds["0.05"] == 2
    assert bounds["60.0"] == 2
    assert bounds[events.INF] == 3 == fetch.count
    assert fetch.sum == pytest.approx(100.043)
    counts = [count for _, count in fetch.buckets]
    assert counts == sorted(counts)
    assert histograms[(observe.MARKET_BUDGET_WAIT, ())].count == 1


def test_a_process_with_metrics_off_notes_nothing(store: events.EventStore) -> None:
    observe.enable(False)
    try:
        observe.market_request("dmarket", "market_items", 200)
        observe.page_phase("judge", 0.01)
    finally:
        observe.enable(True)
    events.flush(store)
    assert store.fields() == {}
