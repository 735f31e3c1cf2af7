"""Trade-locked listings through the DMarket client against the loopback fake: v1 items
carry the lock and its length in `extra`, v2 offers only that they are locked, and
worker.domain.listing.lock_of reads both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.dmarket_server import FakeDMarket, dmarket_item
from worker.domain.listing import lock_of
from worker.markets.dmarket.market import DMarketMarket

ITEMS = [
    dmarket_item("offer-1", "AK-47 | Redline (FT)", 1000, extra={"exterior": "ft"}),
    dmarket_item("offer-2", "AWP | Asiimov (FT)", 5000),
    dmarket_item("offer-3", "Glock-18 | Fade (FN)", 30000),
]
# Seven days' lock, a lock of unknown length, and no lock.
LOCKED = {"offer-1": 7, "offer-2": None}


@pytest.fixture
def fake() -> Iterator[FakeDMarket]:
    with FakeDMarket(ITEMS, locked=LOCKED) as server:
        yield server


def test_v1_items_carry_the_lock_and_its_length_in_extra(fake: FakeDMarket) -> None:
    with DMarketMarket(base_url=fake.url, game="csgo", api="v1", timeout_seconds=5.0) as market:
        page = market.fetch_page(None, 10)
    extras = {item.item_id: item.extra for item in page.items}
    assert extras == {
        "offer-1": {"exterior": "ft", "lockStatus": True, "tradeLockDuration": 7 * 86_400},
        "offer-2": {"lockStatus": True},
        "offer-3": {},
    }
    locks = {item.item_id: lock_of(item) for item in page.items}
    assert locks == {"offer-1": (True, 7), "offer-2": (True, None), "offer-3": (False, None)}


def test_v2_offers_say_only_whether_they_are_locked(fake: FakeDMarket) -> None:
    with DMarketMarket(base_url=fake.url, game="csgo", api="v2", timeout_seconds=5.0) as market:
        page = market.fetch_page(None, 10)
    assert {item.item_id: item.extra["locked"] for item in page.items} == {
        "offer-1": True,
        "offer-2": True,
        "offer-3": False,
    }
    locks = {item.item_id: lock_of(item) for item in page.items}
    assert locks == {"offer-1": (True, None), "offer-2": (True, None), "offer-3": (False, None)}


def test_a_fake_without_locks_serves_no_lock_fields() -> None:
    with (
        FakeDMarket(ITEMS) as server,
        DMarketMarket(base_url=server.url, game="csgo", api="v1", timeout_seconds=5.0) as market,
    ):
        page = market.fetch_page(None, 10)
    assert [lock_of(item) for item in page.items] == [(False, None)] * 3
    assert all("lockStatus" not in item.extra for item in page.items)
