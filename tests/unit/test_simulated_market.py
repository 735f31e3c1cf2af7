"""The simulated market: deterministic, opaque cursors, validated options."""

from __future__ import annotations

import pytest

from worker.errors import InvalidInput, PermanentMarketError, RetryableMarketError
from worker.markets.simulated import SimulatedMarket, SimulatedOptions, decode_cursor


def _walk(market: SimulatedMarket, limit: int) -> list[str]:
    ids, cursor = [], None
    while True:
        page = market.fetch_page(cursor, limit)
        ids.extend(item.item_id for item in page.items)
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


def test_the_same_seed_gives_the_same_catalog_and_every_item_once() -> None:
    first = SimulatedMarket(SimulatedOptions(items=250, seed=9))
    again = SimulatedMarket(SimulatedOptions(items=250, seed=9))
    assert first.fetch_page(None, 100) == again.fetch_page(None, 100)
    ids = _walk(first, 100)
    assert len(ids) == len(set(ids)) == 250
    other = SimulatedMarket(SimulatedOptions(items=250, seed=10)).fetch_page(None, 5)
    assert [i.title for i in other.items] != [i.title for i in first.fetch_page(None, 5).items]


def test_prices_look_like_a_market() -> None:
    page = SimulatedMarket(SimulatedOptions(items=100)).fetch_page(None, 100)
    assert page.total == 100
    assert all(item.price_cents > 0 for item in page.items)
    assert all(" | " in item.title and "(" in item.title for item in page.items)


def test_a_foreign_cursor_is_a_permanent_error() -> None:
    with pytest.raises(PermanentMarketError, match="not one it issued"):
        decode_cursor("garbage!")


def test_fail_rate_injects_retryable_errors() -> None:
    market = SimulatedMarket(SimulatedOptions(items=10, fail_rate=0.99))
    with pytest.raises(RetryableMarketError, match="simulated market answered"):
        for _ in range(50):
            market.fetch_page(None, 10)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"items": "many"}, "option items must be an integer"),
        ({"latency_ms": -1}, "option latency_ms must be an integer"),
        ({"fail_rate": 1.0}, "option fail_rate must be a number from 0 to below 1"),
        ({"colour": "red"}, "unknown simulated market option 'colour'"),
    ],
)
def test_bad_options_are_refused_by_name(options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        SimulatedOptions.from_json(options)


def test_numeric_strings_from_the_cli_are_accepted() -> None:
    options = {"items": "20", "fail_rate": "0.5"}
    assert SimulatedOptions.from_json(options, development=True) == SimulatedOptions(
        items=20, fail_rate=0.5
    )


@pytest.mark.parametrize(
    ("options", "refused"),
    [
        ({"crash_item": 0}, "crash_item"),
        ({"latency_ms": 1}, "latency_ms"),
        ({"item_latency_ms": "60000"}, "item_latency_ms"),
        ({"fail_rate": 0.01}, "fail_rate"),
        ({"items": 50, "seed": 1, "latency_ms": 0, "crash_item": 7}, "crash_item"),
        # At their defaults they inject nothing, and need no development.
        ({"latency_ms": 0, "item_latency_ms": 0, "fail_rate": 0, "crash_item": -1}, None),
        ({"items": 50, "seed": 1}, None),
    ],
)
def test_fault_injection_needs_development_and_says_how_to_switch_it_on(
    options: dict[str, object], refused: str | None
) -> None:
    # Given options that inject a fault (or none), read outside development and inside it
    with_development = SimulatedOptions.from_json(options, development=True)
    if refused is None:
        assert SimulatedOptions.from_json(options) == with_development
        return
    # Then outside development the fault is refused by name, with the variable that allows it
    with pytest.raises(InvalidInput, match=f"option {refused} injects faults") as error:
        SimulatedOptions.from_json(options)
    assert "unless MARKETSCAN_DEV_MODE=1" in str(error.value)
