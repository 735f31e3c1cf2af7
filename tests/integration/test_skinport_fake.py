"""The loopback Skinport speaks Skinport's public API over real HTTP: both endpoints' fields
as documented, Brotli bodies only, 400 for a query Skinport refuses, its sliding request
window, and every failure it can be told to give.

Bodies are read off the wire undecoded and inflated with `brotli`, so a test sees exactly
what a client would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping

import brotli
import httpx
import pytest

from worker.testing.skinport_server import Failure, FakeSkinport, FakeSkinportItem

ITEMS = "/v1/items"
HISTORY = "/v1/sales/history"
USD_ITEMS = {"app_id": "730", "currency": "USD", "tradable": "0"}
USD_HISTORY = {"app_id": "730", "currency": "USD"}

ITEM_FIELDS = {
    "market_hash_name",
    "currency",
    "suggested_price",
    "item_page",
    "market_page",
    "min_price",
    "max_price",
    "mean_price",
    "median_price",
    "quantity",
    "created_at",
    "updated_at",
}
HISTORY_FIELDS = {
    "market_hash_name",
    "currency",
    "item_page",
    "market_page",
    "last_24_hours",
    "last_7_days",
    "last_30_days",
    "last_90_days",
}
WINDOW_FIELDS = {"min", "max", "avg", "median", "volume"}

REDLINE = "AK-47 | Redline (Field-Tested)"
ASIIMOV = "AWP | Asiimov (Battle-Scarred)"
HOWL = "M4A4 | Howl (Factory New)"


class Wire:
    """One answer as it came off the wire: the body still Brotli."""

    def __init__(self, response: httpx.Response, raw: bytes) -> None:
        self.status = response.status_code
        self.headers = response.headers
        self.raw = raw

    def json(self) -> object:
        return json.loads(brotli.decompress(self.raw))


def get(
    fake: FakeSkinport,
    path: str,
    params: Mapping[str, str],
    *,
    accept_encoding: str = "br",
    timeout: float = 10.0,
) -> Wire:
    with (
        httpx.Client(base_url=fake.url, timeout=timeout) as client,
        client.stream(
            "GET", path, params=params, headers={"Accept-Encoding": accept_encoding}
        ) as response,
    ):
        return Wire(response, b"".join(response.iter_raw()))


@pytest.fixture
def fake() -> Iterator[FakeSkinport]:
    items = [
        FakeSkinportItem(REDLINE, 12.34, volume_7d=70, quantity=3),
        FakeSkinportItem(ASIIMOV, None, volume_7d=0, quantity=0),
        FakeSkinportItem(HOWL, 2500.0, volume_7d=None),
    ]
    with FakeSkinport(items) as server:
        yield server


def test_items_carry_every_documented_field_in_brotli(fake: FakeSkinport) -> None:
    answer = get(fake, ITEMS, USD_ITEMS)

    assert answer.status == 200
    assert answer.headers["content-encoding"] == "br"
    assert answer.headers["content-type"] == "application/json; charset=utf-8"
    listed = answer.json()
    assert isinstance(listed, list)
    by_name = {item["market_hash_name"]: item for item in listed}
    assert set(by_name) == {REDLINE, ASIIMOV, HOWL}
    assert all(set(item) == ITEM_FIELDS for item in listed)
    redline = by_name[REDLINE]
    assert redline["currency"] == "USD"
    assert redline["min_price"] == 12.34
    assert redline["min_price"] <= redline["median_price"] <= redline["max_price"]
    assert redline["min_price"] <= redline["mean_price"] <= redline["max_price"]
    assert redline["quantity"] == 3
    assert isinstance(redline["created_at"], int)
    assert isinstance(redline["updated_at"], int)
    assert redline["item_page"].startswith("https://skinport.com/item/")
    assert redline["market_page"].startswith("https://skinport.com/market/730")


def test_an_item_with_nothing_listed_has_a_null_min_price(fake: FakeSkinport) -> None:
    listed = get(fake, ITEMS, USD_ITEMS).json()

    asiimov = next(item for item in listed if item["market_hash_name"] == ASIIMOV)
    assert asiimov["min_price"] is None
    assert asiimov["quantity"] == 0


def test_items_are_priced_in_the_asked_currency(fake: FakeSkinport) -> None:
    listed = get(fake, ITEMS, {**USD_ITEMS, "currency": "EUR"}).json()

    redline = next(item for item in listed if item["market_hash_name"] == REDLINE)
    assert redline["currency"] == "EUR"
    assert redline["min_price"] == round(12.34 * 0.92, 2)


def test_a_bad_value_is_served_as_it_is() -> None:
    with FakeSkinport([FakeSkinportItem(REDLINE, "12.34"), FakeSkinportItem(HOWL, -1)]) as fake:
        listed = get(fake, ITEMS, USD_ITEMS).json()

    assert [item["min_price"] for item in listed] == ["12.34", -1]


def test_sales_history_carries_every_window_and_leaves_out_items_without_a_volume(
    fake: FakeSkinport,
) -> None:
    answer = get(fake, HISTORY, USD_HISTORY)

    assert answer.status == 200
    assert answer.headers["content-encoding"] == "br"
    history = answer.json()
    assert isinstance(history, list)
    by_name = {entry["market_hash_name"]: entry for entry in history}
    assert set(by_name) == {REDLINE, ASIIMOV}
    assert all(set(entry) == HISTORY_FIELDS for entry in history)
    redline = by_name[REDLINE]
    assert redline["currency"] == "USD"
    windows = [redline[name] for name in sorted(HISTORY_FIELDS) if name.startswith("last_")]
    assert all(set(window) == WINDOW_FIELDS for window in windows)
    assert redline["last_7_days"]["volume"] == 70
    assert redline["last_7_days"]["median"] == 12.34
    assert redline["last_7_days"]["min"] <= redline["last_7_days"]["max"]
    unsold = by_name[ASIIMOV]["last_7_days"]
    assert unsold == {"min": None, "max": None, "avg": None, "median": None, "volume": 0}


def test_sales_history_names_only_the_asked_items(fake: FakeSkinport) -> None:
    history = get(fake, HISTORY, {**USD_HISTORY, "market_hash_name": REDLINE}).json()

    assert [entry["market_hash_name"] for entry in history] == [REDLINE]


def test_set_items_takes_effect_for_the_next_request(fake: FakeSkinport) -> None:
    fake.set_items([FakeSkinportItem(HOWL, 2400.0)])

    listed = get(fake, ITEMS, USD_ITEMS).json()

    assert [(item["market_hash_name"], item["min_price"]) for item in listed] == [(HOWL, 2400.0)]


@pytest.mark.parametrize("accept_encoding", ["gzip, deflate", "identity", "br;q=0"])
def test_a_client_that_does_not_accept_brotli_is_refused_406(
    fake: FakeSkinport, accept_encoding: str
) -> None:
    answer = get(fake, ITEMS, USD_ITEMS, accept_encoding=accept_encoding)

    assert answer.status == 406
    assert answer.headers["content-encoding"] == "br"
    assert fake.count(406) == 1
    assert fake.requests[0].headers["accept-encoding"] == accept_encoding


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (ITEMS, {**USD_ITEMS, "app_id": "999"}),
        (ITEMS, {**USD_ITEMS, "currency": "XYZ"}),
        (HISTORY, {**USD_HISTORY, "app_id": "0"}),
        (HISTORY, {**USD_HISTORY, "currency": "usd"}),
    ],
)
def test_a_bad_app_id_or_currency_is_refused_400_with_skinport_errors(
    fake: FakeSkinport, path: str, params: Mapping[str, str]
) -> None:
    answer = get(fake, path, params)

    assert answer.status == 400
    errors = answer.json()["errors"]
    assert len(errors) == 1
    assert set(errors[0]) == {"id", "message"}


def test_past_the_window_both_endpoints_are_refused_429_until_it_passes() -> None:
    with FakeSkinport([FakeSkinportItem(REDLINE, 1.0)], requests_per_window=3) as fake:
        statuses = [get(fake, path, USD_ITEMS).status for path in (ITEMS, HISTORY, ITEMS)]
        refused = get(fake, HISTORY, USD_HISTORY)

    assert statuses == [200, 200, 200]
    assert refused.status == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 300
    assert fake.count(429) == 1


def test_after_retry_after_the_window_allows_a_request_again() -> None:
    with FakeSkinport(
        [FakeSkinportItem(REDLINE, 1.0)], requests_per_window=2, window_seconds=1.0
    ) as fake:
        first = [get(fake, ITEMS, USD_ITEMS).status for _ in range(2)]
        refused = get(fake, ITEMS, USD_ITEMS)
        # Waiting out the fake's own window, as Retry-After says.
        time.sleep(int(refused.headers["retry-after"]))
        again = get(fake, ITEMS, USD_ITEMS)

    assert first == [200, 200]
    assert (refused.status, refused.headers["retry-after"]) == (429, "1")
    assert again.status == 200
    assert [request.status for request in fake.requests] == [200, 200, 429, 200]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_told_to_fail_with_a_status_it_answers_that_status_in_brotli(
    fake: FakeSkinport, status: int
) -> None:
    fake.fail_next(2, status)

    answers = [get(fake, ITEMS, USD_ITEMS) for _ in range(3)]

    assert [answer.status for answer in answers] == [status, status, 200]
    assert "errors" in answers[0].json()


def test_told_not_json_it_sends_brotli_of_bytes_that_are_not_json(fake: FakeSkinport) -> None:
    fake.fail_next(1, "not_json")

    answer = get(fake, ITEMS, USD_ITEMS)

    assert answer.status == 200
    with pytest.raises(json.JSONDecodeError):
        answer.json()


def test_told_wrong_shape_it_sends_an_object_where_a_list_belongs(fake: FakeSkinport) -> None:
    fake.fail_next(1, "wrong_shape")

    answer = get(fake, HISTORY, USD_HISTORY)

    assert answer.status == 200
    assert isinstance(answer.json(), dict)


def test_told_bad_brotli_it_sends_br_bytes_that_do_not_inflate(fake: FakeSkinport) -> None:
    fake.fail_next(1, "bad_brotli")

    answer = get(fake, ITEMS, USD_ITEMS)

    assert (answer.status, answer.headers["content-encoding"]) == (200, "br")
    with pytest.raises(brotli.error):
        brotli.decompress(answer.raw)


def test_told_to_hang_it_answers_after_the_client_gave_up(fake: FakeSkinport) -> None:
    failure: Failure = "hang"
    fake.fail_next(1, failure, hang_seconds=60.0)

    with pytest.raises(httpx.ReadTimeout):
        get(fake, ITEMS, USD_ITEMS, timeout=0.2)
    answer = get(fake, ITEMS, USD_ITEMS)

    assert answer.status == 200
    assert len(fake.requests_to(ITEMS)) == 2


def test_a_failure_told_for_one_path_leaves_the_other_alone(fake: FakeSkinport) -> None:
    fake.fail_next(1, 503, path=HISTORY)

    items = get(fake, ITEMS, USD_ITEMS)
    history = [get(fake, HISTORY, USD_HISTORY) for _ in range(2)]

    assert items.status == 200
    assert [answer.status for answer in history] == [503, 200]


def test_every_request_is_recorded_with_its_query_headers_and_answer(fake: FakeSkinport) -> None:
    get(fake, HISTORY, {**USD_HISTORY, "market_hash_name": f"{REDLINE},{HOWL}"})
    get(fake, ITEMS, USD_ITEMS, accept_encoding="gzip")

    recorded = fake.requests
    assert [(request.path, request.status) for request in recorded] == [
        (HISTORY, 200),
        (ITEMS, 406),
    ]
    assert recorded[0].query == {**USD_HISTORY, "market_hash_name": f"{REDLINE},{HOWL}"}
    assert recorded[0].headers["accept-encoding"] == "br"
    assert recorded[0].received_at <= recorded[1].received_at
    assert fake.requests_to(ITEMS) == [recorded[1]]


def test_an_unknown_failure_is_refused_when_told(fake: FakeSkinport) -> None:
    with pytest.raises(ValueError, match="melt"):
        fake.fail_next(1, "melt")  # type: ignore[arg-type]
