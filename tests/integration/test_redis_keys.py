"""The keys the fleet keeps beside the broker's messages are spelled as deployed data has
them: a renamed prefix would strand every budget window, open breaker, cached reference,
ledger marker, Telegram message and alert memory already stored under the old one."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from worker.chain import broker_ledger
from worker.domain.alert import Find
from worker.domain.page_message import PageMessage
from worker.errors import RetryableMarketError
from worker.markets.fleet.breaker import CircuitBreaker
from worker.markets.fleet.budget import RequestBudget
from worker.markets.fresh.shared_walk import SharedWalk, Walk
from worker.markets.references.cache import ReferenceCache
from worker.markets.second_market.cache import SharedPriceList
from worker.metrics import presence
from worker.metrics.events import RedisEventStore
from worker.notify import alerts, messages
from worker.testing.memory_price_list import MemoryPriceList

SCAN_ID = uuid.UUID("0b7e3c52-8f4d-4f7a-9a51-3d2c1e0f9a88")


@pytest.fixture
def client(env: dict[str, str]) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    yield client
    client.close()


def test_every_key_written_beside_the_messages_keeps_its_deployed_spelling(
    client: redis.Redis,
) -> None:
    # Given one write of each kind of state the fleet keeps in the broker's Redis
    broker_ledger.publishing(PageMessage(SCAN_ID, uuid.uuid4(), 0, 0))
    budget = RequestBudget(client, "market_items", 2.0)
    budget.try_acquire()
    budget.pause(5.0)
    CircuitBreaker(client, "https://api.dmarket.com", 3, 10.0).record_failure("500", at_once=True)
    ReferenceCache(client, "best_bid", "a8db", 60.0).lookup(
        ["AK-47"], lambda titles: dict.fromkeys(titles)
    )
    RedisEventStore(client).add({"c|pages|": 1})
    presence.announce(client, "worker", "w1@host")
    SharedWalk(client, "dmarket:csgo:v2", 0.5).newest(
        0, 1, lambda second, pages: Walk((), (), None, True, 0.0)
    )

    # When the stored keys are listed
    stored = sorted(key.decode() for key in client.keys("marketscan:*"))

    # Then each is spelled as before
    assert stored == [
        "marketscan:breaker:https://api.dmarket.com:failures",
        "marketscan:breaker:https://api.dmarket.com:open",
        "marketscan:budget:market_items:counter",
        "marketscan:budget:market_items:grants",
        "marketscan:budget:market_items:paused",
        "marketscan:fresh:dmarket:csgo:v2:walk",
        "marketscan:metrics:notes",
        "marketscan:metrics:presence",
        f"marketscan:queued:{SCAN_ID}",
        "marketscan:reference:best_bid:a8db:AK-47",
    ]


def test_the_telegram_and_alert_keys_keep_their_deployed_spelling() -> None:
    # Given a scan, a chat and a find
    find = Find(1, "item-7", "AK-47 | Redline", 1234, 1500, 161, 13.0, 0)
    # When their keys are built, then each is spelled as before
    assert [
        messages.state_key(SCAN_ID),
        messages.throttle_key(SCAN_ID),
        messages.edit_slot_key(SCAN_ID),
        messages.backoff_key(42),
        alerts.chat_slot_key(42),
        alerts.second_key(1_700_000_000),
        alerts.seen_key(42, find),
        alerts.pass_lock_key(SCAN_ID),
    ] == [
        f"marketscan:telegram:{SCAN_ID}",
        f"marketscan:telegram:{SCAN_ID}:throttle",
        f"marketscan:telegram:{SCAN_ID}:editing",
        "marketscan:telegram:chat:42:backoff",
        "marketscan:alert:chat:42",
        "marketscan:alert:second:1700000000",
        "marketscan:alert:seen:42:item-7:1234",
        f"marketscan:alert:pass:{SCAN_ID}",
    ]


def test_the_price_list_keys_keep_their_deployed_spelling(client: redis.Redis) -> None:
    # Given a second market's list fetched once in vain, then stored
    market = MemoryPriceList({"AK-47": (100, 1)}, market="skinport")
    market.fail_next()
    cache = SharedPriceList(client, "skinport", "730:USD", 300.0)
    with pytest.raises(RetryableMarketError):
        cache.prices([], market)
    cache.prices([], market)
    base = "marketscan:pricelist:skinport:730:USD:"
    pointer = client.get(f"{base}pointer")
    assert pointer is not None
    generation = json.loads(pointer)["generation"]

    # When the stored keys are listed, Then each is spelled as before (the claim, released,
    # is `<base>claim`)
    stored = sorted(
        key.decode() if isinstance(key, bytes) else key for key in client.scan_iter("marketscan:*")
    )
    assert stored == [
        f"{base}failed",
        f"{base}list:{generation}",
        f"{base}pointer",
    ]
