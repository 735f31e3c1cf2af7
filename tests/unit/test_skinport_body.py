"""Skinport's answers as JSON bytes read into prices and volumes (worker.markets.references.
skinport_body): cents exact from the decimal text, a bad price skipped and counted, every
shape Skinport does not document refused whole, naming its JSON path."""

from __future__ import annotations

import json

import pytest

from worker.errors import RetryableMarketError
from worker.markets.second_market import skinport_body


def item(title: object, min_price: object, currency: object = "USD") -> dict[str, object]:
    return {"market_hash_name": title, "currency": currency, "min_price": min_price}


def sale(title: object, volume: object, currency: object = "USD") -> dict[str, object]:
    window = {"min": 1.0, "max": 2.0, "avg": 1.5, "median": 1.5, "volume": volume}
    return {"market_hash_name": title, "currency": currency, "last_7_days": window}


def items_of(text: str) -> tuple[dict[str, int | None], int]:
    document = skinport_body.decoded(text.encode(), skinport_body.ITEMS)
    return skinport_body.min_prices(document, "USD")


def volumes_of(document: object) -> dict[str, int]:
    decoded = skinport_body.decoded(json.dumps(document).encode(), skinport_body.SALES_HISTORY)
    return skinport_body.weekly_volumes(decoded, "USD")


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("0.3", 30),
        ("0.30000000000000004", 30),
        ("19.99", 1999),
        ("4.35", 435),
        ("1234.565", 123457),
        ("1234.5649999", 123456),
        ("0.005", 1),
        ("0.0049", 0),
        ("7", 700),
        ("0", 0),
        ("-0.0", 0),
        ("1e2", 10000),
        ("12.3456789012345678901234567890123", 1235),
    ],
)
def test_a_price_is_its_decimal_text_in_cents_rounded_half_up(text: str, cents: int) -> None:
    prices, skipped = items_of(
        f'[{{"market_hash_name": "A", "currency": "USD", "min_price": {text}}}]'
    )
    assert (prices, skipped) == ({"A": cents}, 0)


@pytest.mark.parametrize(
    "text",
    [
        "-1",
        "-0.01",
        '"abc"',
        '"12.34"',
        "true",
        "false",
        "1e999",
        "Infinity",
        "NaN",
        "[]",
        "{}",
        "1" + "0" * 200,
        "1e18",
    ],
)
def test_an_item_whose_price_is_not_a_finite_number_at_least_zero_is_skipped_and_counted(
    text: str,
) -> None:
    prices, skipped = items_of(
        f'[{{"market_hash_name": "bad", "currency": "USD", "min_price": {text}}},'
        ' {"market_hash_name": "good", "currency": "USD", "min_price": 1.5}]'
    )
    assert (prices, skipped) == ({"good": 150}, 1)


def test_a_null_price_is_a_title_with_nothing_listed() -> None:
    assert items_of(json.dumps([item("A", None)])) == ({"A": None}, 0)


def test_a_title_listed_twice_keeps_its_lowest_price() -> None:
    document = [item("A", 5), item("A", None), item("A", 3.5), item("A", "x"), item("A", 4)]
    assert items_of(json.dumps(document)) == ({"A": 350}, 1)
    assert items_of(json.dumps([item("B", None), item("B", None)])) == ({"B": None}, 0)


def test_a_title_past_its_bound_is_skipped_and_counted() -> None:
    assert items_of(json.dumps([item("x" * 513, 1), item("A", 1)])) == ({"A": 100}, 1)


ITEM_SHAPES = [
    ({"items": []}, "skinport items: the answer: expected a list, got {'items': []}"),
    ([item("A", 1), "B"], "skinport items: [1]: expected an object, got 'B'"),
    ([item("A", 1), item(7, 1)], "skinport items: [1].market_hash_name: expected a string, got 7"),
    ([{"currency": "USD", "min_price": 1}], "[0].market_hash_name: expected a string, got None"),
    ([item("A", 1, "EUR")], "skinport items: [0].currency: expected 'USD', got 'EUR'"),
    ([item("A", 1, None)], "skinport items: [0].currency: expected 'USD', got None"),
]


@pytest.mark.parametrize(("document", "message"), ITEM_SHAPES)
def test_items_of_another_shape_are_refused_whole_naming_the_path(
    document: object, message: str
) -> None:
    with pytest.raises(RetryableMarketError, match=r"^skinport items: ") as raised:
        items_of(json.dumps(document))
    assert message in str(raised.value)


HISTORY_SHAPES = [
    ([], None),
    ({"a": 1}, "skinport sales history: the answer: expected a list, got {'a': 1}"),
    ([sale("A", 1), None], "skinport sales history: [1]: expected an object, got None"),
    ([sale(["A"], 1)], "[0].market_hash_name: expected a string, got ['A']"),
    ([sale("A", 1, "GBP")], "[0].currency: expected 'USD', got 'GBP'"),
    (
        [{"market_hash_name": "A", "currency": "USD", "last_7_days": [1]}],
        "skinport sales history: [0].last_7_days: expected an object, got [1]",
    ),
    (
        [{"market_hash_name": "A", "currency": "USD"}],
        "[0].last_7_days: expected an object, got None",
    ),
    ([sale("A", -1)], "[0].last_7_days.volume: expected a non-negative integer, got -1"),
    ([sale("A", 2.5)], "[0].last_7_days.volume: expected a non-negative integer, got 2.5"),
    ([sale("A", "3")], "[0].last_7_days.volume: expected a non-negative integer, got '3'"),
    ([sale("A", True)], "[0].last_7_days.volume: expected a non-negative integer, got True"),
    ([sale("A", None)], "[0].last_7_days.volume: expected a non-negative integer, got None"),
    ([sale("A", 10**20)], "[0].last_7_days.volume: expected a non-negative integer, got 1000"),
]


@pytest.mark.parametrize(("document", "message"), HISTORY_SHAPES)
def test_a_history_of_another_shape_is_refused_whole_naming_the_path(
    document: object, message: str | None
) -> None:
    if message is None:
        assert volumes_of(document) == {}
        return
    with pytest.raises(RetryableMarketError, match=r"^skinport sales history: ") as raised:
        volumes_of(document)
    assert message in str(raised.value)


def test_each_title_has_its_7_day_volume_and_a_title_twice_the_larger() -> None:
    assert volumes_of([sale("A", 3), sale("B", 0), sale("A", 5), sale("A", 4)]) == {"A": 5, "B": 0}


@pytest.mark.parametrize(
    "data",
    [b"<html>Bad Gateway</html>", b"", b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe[]"],
)
def test_bytes_that_are_not_json_are_retryable_naming_the_answer(data: bytes) -> None:
    with pytest.raises(RetryableMarketError, match=r"^skinport items: not valid JSON"):
        skinport_body.decoded(data, skinport_body.ITEMS)


def test_skinports_error_document_is_read_for_its_id_and_message() -> None:
    body = json.dumps({"errors": [{"id": "invalid_currency", "message": "no such currency"}]})
    assert skinport_body.error_text(body.encode()) == "invalid_currency: no such currency"
    assert skinport_body.error_text(b"<h1>Forbidden</h1>") == "<h1>Forbidden</h1>"
    assert skinport_body.error_text(b"") == "<empty body>"
