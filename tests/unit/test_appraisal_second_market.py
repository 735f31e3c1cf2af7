"""A DMarket listing judged against a second market (Skinport): listing the item there, at
its lowest listing less the undercut, after its seller fee by price band, with the level's
margin plus the hold margin, and that market's own 7-day volume as liquidity."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

import pytest

from worker.domain.appraisal import Appraisal, Illiquid, appraise, is_candidate, opportunity_of
from worker.domain.evidence import Evidence
from worker.domain.fees import SKINPORT_SELLER, BandedFee, FeeTable
from worker.domain.listing import Item
from worker.domain.opportunities import Level
from worker.domain.reference import BEST_BID, SKINPORT, Reference
from worker.errors import InvalidInput

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()
TITLE = "AWP | Asiimov (Field-Tested)"
SKINPORT_FEE = BandedFee(SKINPORT_SELLER, 800, 600, 100_000)
# DMarket's table is never what a Skinport exit pays: a fee of 90 % here would show it.
DMARKET_FEES = FeeTable(default_bps=9_000, min_amount_cents=0, reduced=(), fetched_at=NOW)
LEVEL = Level("standard", 100, 1_000_000, 0.05)


def _skinport(sale_cents: int, volume: int | None = 10) -> Reference:
    return Reference(SKINPORT, sale_cents, None, datetime.fromtimestamp(NOW, UTC), sales_7d=volume)


def _appraise(
    price: int, elsewhere: Reference | None, *, level: Level = LEVEL, locked: bool = False
) -> Appraisal | Illiquid | None:
    return appraise(
        title=TITLE,
        price_cents=price,
        judged_kind=SKINPORT,
        listed_reference_cents=None,
        evidence=Evidence(None, None, DMARKET_FEES, NOW, elsewhere, SKINPORT_FEE),
        rule=level,
        locked=locked,
        lock_days=7 if locked else None,
    )


def _oracle_is_find(price: int, sale: int, margin: Fraction) -> bool:
    """The documented rule in rationals: 8 % (6 % above $1,000) rounded up to a cent."""
    bps = 600 if sale > 100_000 else 800
    fee = -(-sale * bps // 10_000)
    return Fraction(sale - fee - price, price) >= margin


@pytest.mark.parametrize("price", [500, 700, 745, 746, 760, 800, 900])
def test_the_skinport_exit_pays_skinports_fee_and_needs_the_hold_margin_on_top(price: int) -> None:
    # Given a Skinport sale at $9.00 (8 %: 72 cents) and a level of 5 % plus a 5 % hold
    # When listings at prices around the threshold are appraised
    found = _appraise(price, _skinport(900))
    # Then each is a find exactly when the oracle's rational rule says so
    expected = _oracle_is_find(price, 900, Fraction(1, 10))
    assert isinstance(found, Appraisal) == expected
    if isinstance(found, Appraisal):
        assert (found.judged.fee.bps, found.judged.fee.source) == (800, SKINPORT_SELLER)
        assert found.judged.fee.cents == 72
        assert found.judged.profit_cents == 900 - 72 - price
        assert found.listing == found.judged and found.sell_now is None
        assert found.sales_7d == 10 and found.last_sale_at is None


def test_a_sale_above_a_thousand_dollars_pays_the_high_fee_and_at_it_the_low_one() -> None:
    above = _appraise(50_000, _skinport(100_001))
    at = _appraise(50_000, _skinport(100_000))
    assert isinstance(above, Appraisal) and isinstance(at, Appraisal)
    assert (above.judged.fee.bps, above.judged.fee.cents) == (600, 6_001)
    assert (at.judged.fee.bps, at.judged.fee.cents) == (800, 8_000)


def test_without_the_hold_margin_a_listing_between_the_two_margins_is_a_find() -> None:
    # A listing at 7.60 against 9.00 after 72 cents leaves 8.9 %: over the level's 5 %, under
    # 5 % + the 5 % hold margin; no find with the hold margin, a find without it
    assert _appraise(760, _skinport(900)) is None
    no_hold = Level("standard", 100, 1_000_000, 0.05, hold_margin=0.0)
    assert isinstance(_appraise(760, _skinport(900), level=no_hold), Appraisal)


def test_a_locked_listing_needs_the_locked_margin_as_well() -> None:
    # 7.00 against 9.00 after 72 cents leaves 18.3 %: over 10 %, under 10 % + 10 %
    assert isinstance(_appraise(700, _skinport(900)), Appraisal)
    locked = _appraise(700, _skinport(900), locked=True, level=Level(
        "standard", 100, 1_000_000, 0.05, locked_margin=0.10
    ))  # fmt: skip
    assert locked is None


@pytest.mark.parametrize(("volume", "illiquid"), [(None, True), (0, True), (2, True), (3, False)])
def test_skinports_7_day_volume_is_the_liquidity_minimum(
    volume: int | None, illiquid: bool
) -> None:
    found = _appraise(500, _skinport(900, volume))
    if illiquid:
        assert isinstance(found, Illiquid)
        assert "on Skinport in 7 days, fewer than 3" in found.reason
    else:
        assert isinstance(found, Appraisal)


def test_a_title_skinport_does_not_list_is_no_candidate() -> None:
    assert _appraise(500, None) is None
    assert not is_candidate(
        title=TITLE,
        price_cents=500,
        judged_kind=SKINPORT,
        listed_reference_cents=None,
        evidence=Evidence(_bid(10_000), None, DMARKET_FEES, NOW, None, SKINPORT_FEE),
        rule=LEVEL,
        locked=False,
    )


def _bid(cents: int) -> Reference:
    # A DMarket best bid beside a Skinport scan is not its exit.
    return Reference(BEST_BID, cents, 5, datetime.fromtimestamp(NOW, UTC))


def test_the_find_names_skinport_its_price_fee_and_age() -> None:
    reference = _skinport(900)
    item = Item("offer-1", TITLE, 500, reference=reference, reference_price_cents=900)
    found = _appraise(500, reference)
    assert isinstance(found, Appraisal)
    opportunity = opportunity_of(item, SKINPORT, found)
    assert opportunity.reference_kind == SKINPORT
    assert opportunity.reference_price_cents == 900
    assert opportunity.reference_fetched_at == reference.fetched_at
    assert (opportunity.fee_bps, opportunity.fee_source, opportunity.fee_cents) == (
        800,
        SKINPORT_SELLER,
        72,
    )
    assert opportunity.profit_cents == opportunity.listing_profit_cents == 328
    assert opportunity.sell_now_profit_cents is None
    assert opportunity.sales_7d == 10


def test_levels_bound_the_new_fields_by_name() -> None:
    with pytest.raises(InvalidInput, match="hold_margin must be a fraction"):
        Level("standard", 100, 1_000, 0.05, hold_margin=-0.1)
    with pytest.raises(InvalidInput, match="min_volume_7d must be a whole number"):
        Level("standard", 100, 1_000, 0.05, min_volume_7d=-1)
    with pytest.raises(InvalidInput, match="skinport fee: must be whole basis points"):
        BandedFee(SKINPORT_SELLER, 10_001, 600, 100_000)
