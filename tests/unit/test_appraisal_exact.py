"""The price test of every listing, checked against its rational statement over many listings.

Judging prices a listing's judged exit as plain integers and builds the exit only for a
candidate; this holds it to the rule as written: profit after the fee its sale pays, over
the price, at least the level's margin (plus the locked and hold margins), in exact
fractions of the decimals a level is written in. The listings are drawn from a seeded
generator, so a failure names a listing that fails again.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from fractions import Fraction

import pytest

from worker.domain.appraisal import Appraisal, appraise, exit_of
from worker.domain.evidence import Evidence
from worker.domain.fees import BandedFee, FeeTable, ReducedFee, fee_cents
from worker.domain.opportunities import Level
from worker.domain.reference import BEST_BID, LAST_SALES, SKINPORT, SUGGESTED, Reference

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()
TITLES = ("AK-47 | Redline (Field-Tested)", "AWP | Asiimov (Battle-Scarred)")
# Margins as a level is written: short decimals, a few of which are no exact binary float.
MARGINS = (0.0, 0.01, 0.03, 0.05, 0.1, 0.15, 0.2, 0.3, 0.333, 0.07)
SKINPORT_FEE = BandedFee(SKINPORT, 800, 600, 100_000)
LISTINGS = 20_000


def _fees(rng: random.Random) -> FeeTable:
    """A table with overlapping reduced bands on the first title, one of them expired."""
    title = TITLES[0]
    return FeeTable(
        default_bps=rng.choice((0, 200, 500, 700, 1_000)),
        min_amount_cents=rng.choice((0, 1, 10, 50)),
        reduced=(
            ReducedFee(title, 200, 500, 5_000, NOW + 3_600),
            ReducedFee(title, 300, 2_000, 9_000, NOW + 3_600),
            ReducedFee(title, 100, 0, 100_000, NOW - 1),
        ),
        fetched_at=NOW - 60,
    )


def _level(rng: random.Random) -> Level:
    return Level(
        "standard",
        1,
        10_000_000,
        rng.choice(MARGINS),
        min_sales_7d=0,
        min_buy_orders=0,
        locked_margin=rng.choice(MARGINS),
        min_volume_7d=0,
        hold_margin=rng.choice(MARGINS),
    )


def _reference(kind: str, cents: int) -> Reference:
    at = datetime.fromtimestamp(NOW, UTC)
    return Reference(kind, cents, 5, at, sales_7d=50, last_sale_at=at)


def _rational_margin(level: Level, locked: bool, elsewhere: bool) -> Fraction:
    margin = Fraction(str(level.min_profit))
    if locked:
        margin += Fraction(str(level.locked_margin))
    if elsewhere:
        margin += Fraction(str(level.hold_margin))
    return margin


@pytest.mark.parametrize("kind", [BEST_BID, LAST_SALES, SUGGESTED, SKINPORT])
def test_a_listing_is_a_find_exactly_when_the_rational_rule_says_and_with_its_exit(
    kind: str,
) -> None:
    # Given many listings, each with a fee table, a level and a sale price drawn near the
    # threshold (where rounding would show)
    rng = random.Random(f"appraisal-exact:{kind}")
    for listing in range(LISTINGS):
        price = rng.randint(1, 20_000)
        sale = max(0, round(price * rng.uniform(0.9, 1.6)) + rng.randint(-2, 2))
        title, locked = rng.choice(TITLES), rng.random() < 0.3
        fees, level = _fees(rng), _level(rng)
        reference = _reference(kind, sale)
        evidence = Evidence(
            best_bid=reference if kind == BEST_BID else None,
            # Judged against the best bid, the listing still needs a sale on record.
            last_sales=reference
            if kind == LAST_SALES
            else _reference(LAST_SALES, price)
            if kind in (BEST_BID, LAST_SALES)
            else None,
            fees=fees,
            now=NOW,
            elsewhere=reference if kind == SKINPORT else None,
            elsewhere_fee=SKINPORT_FEE if kind == SKINPORT else None,
        )
        # When it is judged
        found = appraise(
            title=title,
            price_cents=price,
            judged_kind=kind,
            listed_reference_cents=sale if kind == SUGGESTED else None,
            evidence=evidence,
            rule=level,
            locked=locked,
            lock_days=None,
        )
        # Then it is a find exactly when its profit after the fee clears the margin in
        # fractions, and the find's judged exit is the one exit_of prices
        if kind == SKINPORT:
            fee = fee_cents(sale, SKINPORT_FEE.fee_for(sale).bps, 0)
        else:
            fee = fees.fee_for(title, sale, NOW).cents
        margin = _rational_margin(level, locked, elsewhere=kind == SKINPORT)
        expected = Fraction(sale - fee - price, price) >= margin
        case = f"listing {listing}: price {price}, sale {sale}, {title}, locked {locked}"
        assert isinstance(found, Appraisal) == expected, case
        if isinstance(found, Appraisal):
            assert found.judged.profit_cents == sale - fee - price, case
            if kind != SKINPORT:
                assert found.judged == exit_of(price, sale, title, evidence), case
