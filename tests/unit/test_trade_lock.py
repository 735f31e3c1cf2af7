"""A listing's trade lock (worker.domain.listing.lock_of), as DMarket's v1 items and v2
offers give it, and the v1 lock fields refused when they are not what the rule reads."""

from __future__ import annotations

import re
from typing import Any

import pytest

from worker.domain.listing import Item, lock_of
from worker.errors import PermanentMarketError
from worker.markets.dmarket.v1_items import parse_page
from worker.markets.dmarket.v2_offers import parse_offers

DAY = 86_400


def item(**extra: Any) -> Item:
    return Item("id-1", "AK-47 | Redline (FT)", 1000, None, extra=extra)


@pytest.mark.parametrize(
    ("extra", "lock"),
    [
        ({}, (False, None)),
        ({"lockStatus": False, "tradeLockDuration": 0}, (False, None)),
        ({"lockStatus": True, "tradeLockDuration": 7 * DAY}, (True, 7)),
        # Days are rounded up: a lock of a day and a second is two days of waiting.
        ({"lockStatus": True, "tradeLockDuration": DAY + 1}, (True, 2)),
        ({"lockStatus": True, "tradeLockDuration": 1}, (True, 1)),
        ({"tradeLockDuration": 2.5 * DAY}, (True, 3)),
        # A lock with time left is a lock, whatever the status says.
        ({"lockStatus": False, "tradeLockDuration": 3 * DAY}, (True, 3)),
        ({"lockStatus": True}, (True, None)),
        ({"lockStatus": True, "tradeLockDuration": 0}, (True, None)),
        # v2 says only whether.
        ({"locked": True}, (True, None)),
        ({"locked": False}, (False, None)),
        # Only a real true is a lock; the parsers refuse other shapes of lockStatus.
        ({"locked": "true"}, (False, None)),
        ({"tradeLockDuration": True}, (False, None)),
    ],
)
def test_lock_of_reads_the_lock_and_its_days(
    extra: dict[str, Any], lock: tuple[bool, int | None]
) -> None:
    assert lock_of(item(**extra)) == lock


def v1_body(extra: dict[str, Any]) -> dict[str, Any]:
    listing = {"itemId": "id-1", "title": "t", "price": {"USD": "100"}, "extra": extra}
    return {"objects": [listing], "cursor": ""}


def test_v1_keeps_the_lock_fields_in_extra() -> None:
    page = parse_page(v1_body({"lockStatus": True, "tradeLockDuration": 3 * DAY}))
    (listed,) = page.items
    assert listed.extra == {"lockStatus": True, "tradeLockDuration": 3 * DAY}
    assert lock_of(listed) == (True, 3)


def test_v2_keeps_locked_in_extra() -> None:
    offer = {"offerId": "o-1", "priceCents": 100, "locked": True, "attributes": {"title": "t"}}
    (listed,) = parse_offers({"items": [offer], "total": 1, "cursor": ""}).items
    assert lock_of(listed) == (True, None)


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"lockStatus": "true"}, "objects[0].extra.lockStatus"),
        ({"lockStatus": 1}, "objects[0].extra.lockStatus"),
        ({"tradeLockDuration": "86400"}, "objects[0].extra.tradeLockDuration"),
        ({"tradeLockDuration": -1}, "objects[0].extra.tradeLockDuration"),
        ({"tradeLockDuration": False}, "objects[0].extra.tradeLockDuration"),
        ({"tradeLockDuration": [86400]}, "objects[0].extra.tradeLockDuration"),
    ],
)
def test_a_malformed_v1_lock_field_is_a_malformed_page_named_by_its_path(
    extra: dict[str, Any], path: str
) -> None:
    with pytest.raises(PermanentMarketError, match=f"^{re.escape(path)}: expected"):
        parse_page(v1_body(extra))


def test_a_lock_of_more_than_twenty_digits_of_seconds_walks_past_the_listing() -> None:
    page = parse_page(v1_body({"tradeLockDuration": 10**25}))
    assert (page.items, page.unusable) == ((), 1)
