"""The fleet's reference cache against its race: a lookup that lands between a miss and a claim.

Process A misses a title, process B claims, fetches, stores and releases it, and only then
does A claim it. A's claim is granted (B's is gone), so A must read the stored answer again
before asking the market, or the fleet asks DMarket twice for one title within its TTL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from worker import redis_keys
from worker.domain.reference import Reference
from worker.markets.references.cache import ReferenceCache

TITLES = ["Title 1", "Title 2"]


class _RacedRedis(redis.Redis):
    """A's client: right after A's first read, another process's whole lookup runs."""

    race: Callable[[], object] | None = None

    def mget(self, keys: Any, *args: Any) -> Any:
        values = super().mget(keys, *args)
        race, self.race = self.race, None
        if race is not None:
            race()
        return values


class _Market:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def fetch(self, titles: list[str]) -> Mapping[str, Reference | None]:
        self.asked.extend(titles)
        return {t: Reference("best_bid", 100, 3, datetime.now(UTC)) for t in titles}


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{redis_keys.REFERENCE_PREFIX}*"):
        client.delete(key)
    yield client
    client.close()


def test_a_title_another_process_stored_after_our_miss_is_not_asked_again(
    client: redis.Redis, redis_url: str
) -> None:
    market = _Market()
    other = ReferenceCache(client, "best_bid", "a8db", 60.0)
    raced = _RacedRedis.from_url(redis_url)
    raced.race = lambda: other.lookup(TITLES, market.fetch)
    mine = ReferenceCache(raced, "best_bid", "a8db", 60.0)

    found = mine.lookup(TITLES, market.fetch)

    assert market.asked == TITLES
    assert {title: ref.price_cents for title, ref in found.items() if ref} == {
        "Title 1": 100,
        "Title 2": 100,
    }
    raced.close()
