"""The v2 offers parser: a body as DMarket's spec shapes it, and every defect named by path."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from worker.errors import PermanentMarketError
from worker.markets.dmarket.v2_offers import parse_offers

OFFER: dict[str, Any] = {
    "offerId": "3f0f1a9e-3c1b-4e0c-9b8a-0a5f3b7c2d11",
    "priceCents": 1234,
    "createdAt": "2026-07-01T12:00:00Z",
    "locked": False,
    "attributes": {
        "title": "AK-47 | Redline (Field-Tested)",
        "gameId": "a8db",
        "categoryPath": "rifle/ak-47",
        "tradable": True,
        "cs2Attributes": {"exterior": "field-tested", "floatValue": 0.21, "paintSeed": 661},
    },
}
BODY: dict[str, Any] = {"items": [OFFER], "total": 12000, "cursor": "c2"}


def test_an_offer_becomes_an_item_with_its_cents_and_flat_descriptors() -> None:
    page = parse_offers(BODY)
    (item,) = page.items
    assert (item.item_id, item.title, item.price_cents) == (
        OFFER["offerId"],
        "AK-47 | Redline (Field-Tested)",
        1234,
    )
    # v2 has no suggested price: the reference comes from the scan's reference source.
    assert item.reference_price_cents is None
    assert item.extra == {
        "createdAt": "2026-07-01T12:00:00Z",
        "locked": False,
        "gameId": "a8db",
        "categoryPath": "rifle/ak-47",
        "tradable": True,
        "exterior": "field-tested",
        "floatValue": 0.21,
        "paintSeed": 661,
    }
    assert (page.next_cursor, page.total, page.total_is_lower_bound) == ("c2", 12000, True)


def test_an_empty_cursor_ends_the_listing_and_total_may_be_missing() -> None:
    page = parse_offers({"items": [], "cursor": ""})
    assert (page.items, page.next_cursor, page.total) == ((), None, None)


def test_a_non_uuid_offer_id_is_kept_as_it_is() -> None:
    body = copy.deepcopy(BODY)
    body["items"][0]["offerId"] = "1234567:188530139:31415926535:730"
    assert parse_offers(body).items[0].item_id == "1234567:188530139:31415926535:730"


def _broken(path: str, value: object) -> dict[str, Any]:
    body = copy.deepcopy(BODY)
    *parents, leaf = path.split(".")
    target: Any = body
    for name in parents:
        target = target[int(name)] if name.isdigit() else target[name]
    if value is KeyError:
        del target[leaf]
    else:
        target[leaf] = value
    return body


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("items", KeyError, "items: expected a list, got missing"),
        ("items", {}, "items: expected a list"),
        ("items.0.offerId", KeyError, "items[0].offerId: expected a non-empty string"),
        ("items.0.offerId", "", "items[0].offerId: expected a non-empty string"),
        ("items.0.priceCents", "1234", "items[0].priceCents: expected a non-negative integer"),
        ("items.0.priceCents", -1, "items[0].priceCents: expected a non-negative integer"),
        ("items.0.priceCents", True, "items[0].priceCents: expected a non-negative integer"),
        ("items.0.attributes", KeyError, "items[0].attributes: expected an object"),
        ("items.0.attributes.title", 7, "items[0].attributes.title: expected a string"),
        (
            "items.0.attributes.cs2Attributes",
            [],
            "items[0].attributes.cs2Attributes: expected an object",
        ),
        ("total", "12000", "total: expected a non-negative integer"),
        ("cursor", 5, "cursor: expected a string"),
    ],
)
def test_every_defect_is_named_by_its_json_path(path: str, value: object, named: str) -> None:
    with pytest.raises(PermanentMarketError, match=rf"^{named}".replace("[", r"\[")):
        parse_offers(_broken(path, value))


def test_a_body_that_is_not_an_object_is_named() -> None:
    with pytest.raises(PermanentMarketError, match=r"^response body: expected an object"):
        parse_offers([])
