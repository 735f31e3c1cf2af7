"""The fee rules (worker.domain.fees): which fee a sale pays, its cents rounded up and
floored at the minimum, and when a table is to be read again."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from worker.domain.fees import (
    CONFIGURED,
    DEFAULT,
    REDUCED,
    TABLE_LIFE_SECONDS,
    AppliedFee,
    FeeTable,
    ReducedFee,
    bps_of,
    fee_cents,
)
from worker.errors import InvalidInput

NOW = 1_800_000_000.0
AK = "AK-47 | Redline (Field-Tested)"


def table(*reduced: ReducedFee, min_amount_cents: int = 1) -> FeeTable:
    return FeeTable(500, min_amount_cents, reduced, fetched_at=NOW)


def test_a_title_without_a_reduced_fee_pays_the_default_rounded_up_to_a_cent() -> None:
    # 5 % of 1,234 cents is 61.7 cents: the fee is 62, never 61
    assert table().fee_for(AK, 1234, NOW) == AppliedFee(500, DEFAULT, 62)


def test_a_reduced_fee_applies_inside_its_band_edges_included() -> None:
    fees = table(ReducedFee(AK, 200, 100, 5000, NOW + 60))
    assert fees.fee_for(AK, 100, NOW) == AppliedFee(200, REDUCED, 2)
    assert fees.fee_for(AK, 5000, NOW) == AppliedFee(200, REDUCED, 100)
    assert fees.fee_for(AK, 1234, NOW) == AppliedFee(200, REDUCED, 25)


def test_outside_its_band_or_for_another_title_the_default_applies() -> None:
    fees = table(ReducedFee(AK, 200, 100, 5000, NOW + 60))
    assert fees.fee_for(AK, 99, NOW).source == DEFAULT
    assert fees.fee_for(AK, 5001, NOW).source == DEFAULT
    assert fees.fee_for("AWP | Asiimov (Field-Tested)", 1234, NOW).source == DEFAULT


def test_a_reduced_fee_stops_applying_at_its_expiry() -> None:
    fees = table(ReducedFee(AK, 200, 100, 5000, NOW + 60))
    assert fees.fee_for(AK, 1000, NOW + 59.999).source == REDUCED
    assert fees.fee_for(AK, 1000, NOW + 60) == AppliedFee(500, DEFAULT, 50)


def test_the_minimum_amount_floors_every_fee() -> None:
    fees = table(ReducedFee(AK, 200, 1, 5000, NOW + 60), min_amount_cents=5)
    # 2 % of 10 cents is 0.2 cent, 5 % of 10 is 0.5: both pay the minimum
    assert fees.fee_for(AK, 10, NOW) == AppliedFee(200, REDUCED, 5)
    assert fees.fee_for("other", 10, NOW) == AppliedFee(500, DEFAULT, 5)
    assert fees.fee_for("other", 0, NOW) == AppliedFee(500, DEFAULT, 5)


def test_overlapping_reduced_fees_of_a_title_charge_the_highest_of_them() -> None:
    fees = table(
        ReducedFee(AK, 100, 100, 1000, NOW + 60),
        ReducedFee(AK, 300, 500, 5000, NOW + 60),
    )
    assert fees.fee_for(AK, 200, NOW).bps == 100
    assert fees.fee_for(AK, 700, NOW).bps == 300
    assert fees.fee_for(AK, 2000, NOW).bps == 300


def test_the_configured_table_charges_its_one_fee_to_every_sale_without_a_minimum() -> None:
    fees = FeeTable.configured(0.07, fetched_at=NOW)
    assert (fees.default_bps, fees.min_amount_cents, fees.reduced) == (700, 0, ())
    assert fees.fee_for(AK, 1001, NOW) == AppliedFee(700, CONFIGURED, 71)
    assert fees.fee_for(AK, 0, NOW) == AppliedFee(700, CONFIGURED, 0)


def test_cents_are_exact_integers_on_prices_a_float_would_round() -> None:
    # 7 % of 10**17 + 1 cents: a float product loses the last cent, the integer one not
    assert fee_cents(10**17 + 1, 700, 0) == 7 * 10**15 + 1


def test_a_table_expires_at_its_first_reduced_fee_to_expire_after_the_fetch() -> None:
    fees = table(
        ReducedFee(AK, 200, 1, 5000, NOW + 7200),
        ReducedFee("B", 200, 1, 5000, NOW + 3600),
        # already expired when fetched: it says nothing of when to read again
        ReducedFee("C", 200, 1, 5000, NOW - 10),
    )
    assert fees.expires_at() == NOW + 3600


def test_a_table_is_read_again_within_a_day_at_the_latest() -> None:
    assert table().expires_at() == NOW + TABLE_LIFE_SECONDS
    far = table(ReducedFee(AK, 200, 1, 5000, NOW + 3 * TABLE_LIFE_SECONDS))
    assert far.expires_at() == NOW + TABLE_LIFE_SECONDS


@pytest.mark.parametrize(("fraction", "bps"), [(0.0, 0), (0.05, 500), (0.07, 700), (1.0, 10_000)])
def test_a_fraction_is_kept_in_basis_points(fraction: float, bps: int) -> None:
    assert bps_of(fraction) == bps


@pytest.mark.parametrize(
    "build",
    [
        lambda: bps_of(1.5),
        lambda: bps_of(-0.01),
        lambda: FeeTable(10_001, 0, (), NOW),
        lambda: FeeTable(500, -1, (), NOW),
        lambda: FeeTable(500, 0, (), NOW, default_source=REDUCED),
        lambda: ReducedFee(AK, -1, 1, 2, NOW),
        lambda: ReducedFee(AK, 200, 3, 2, NOW),
        lambda: ReducedFee(AK, 200, -1, 2, NOW),
        lambda: ReducedFee(AK, 200, 1, 2, float("nan")),
        lambda: table().fee_for(AK, -1, NOW),
    ],
)
def test_a_value_no_fee_can_have_is_refused(build: Callable[[], object]) -> None:
    with pytest.raises(InvalidInput):
        build()
