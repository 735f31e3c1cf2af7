"""The arbitrage rule, levels and price bands."""

from __future__ import annotations

from typing import Any

import pytest

from worker.domain.opportunities import LEVELS, Level, level_named
from worker.domain.scan_params import ScanParams
from worker.errors import InvalidInput
from worker.markets.base import Item


def _item(price: int, reference: int | None) -> Item:
    return Item(item_id="i", title="AK-47 | Redline (Field-Tested)", price_cents=price,
                reference_price_cents=reference)  # fmt: skip


def _judge(item: Item, min_profit: float = 0.05) -> Any:
    # The configured fee (the simulated market's, and v1's suggested price): 7 %.
    rule = Level("standard", 100, 10_000, min_profit)
    return ScanParams(game="csgo", fee=0.07, level_rule=rule).judge(item)


def test_an_item_clearing_the_margin_after_fee_is_an_opportunity() -> None:
    # 1000 * 0.93 = 930 net; (930 - 800) / 800 = 16.25 %
    found = _judge(_item(800, 1000))
    assert found is not None
    assert (found.fee_cents, found.profit_cents, found.profit_percent) == (70, 130, 16.25)


def test_the_threshold_is_inclusive_and_the_fee_counts() -> None:
    # (1000*0.93 - 600) / 600 = 0.55 exactly
    assert _judge(_item(600, 1000), min_profit=0.55) is not None
    assert _judge(_item(601, 1000), min_profit=0.55) is None
    # Without the fee 1000 vs 950 would be 5.3 %; with it, a loss.
    assert _judge(_item(950, 1000)) is None


@pytest.mark.parametrize("price", [99, 10_001])
def test_items_outside_the_band_are_skipped(price: int) -> None:
    assert _judge(_item(price, price * 3)) is None


def test_items_without_reference_price_are_skipped() -> None:
    assert _judge(_item(500, None)) is None


def test_levels_include_standard_and_pro_and_unknown_names_are_refused() -> None:
    assert {"standard", "pro"} <= set(LEVELS)
    assert level_named("pro").min_profit > 0
    with pytest.raises(InvalidInput, match="level must be one of"):
        level_named("godlike")
