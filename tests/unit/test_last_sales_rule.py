"""The last-sales reference's rule (worker.markets.references.last_sales): the median of
the sales left once those above twice or below half the median of all are left out, how
many were made in the last 7 days, and when the newest was, read at a chosen "now"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from worker.domain.reference import LAST_SALES, Reference
from worker.errors import RetryableMarketError
from worker.markets.references.last_sales import Sale, median, parse_sales, reference_of

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def sales(*prices_and_days_ago: tuple[int, float]) -> list[Sale]:
    return [Sale(cents, NOW - timedelta(days=days)) for cents, days in prices_and_days_ago]


def test_without_outliers_the_reference_is_the_median_of_every_sale() -> None:
    read = sales((1000, 0.5), (1100, 1), (900, 2), (1050, 3), (950, 4))
    reference = reference_of(read, NOW)
    assert reference == Reference(
        LAST_SALES, 1000, 5, NOW, sales_7d=5, last_sale_at=NOW - timedelta(days=0.5)
    )


def test_sales_above_twice_or_below_half_the_median_are_left_out_of_price_and_count() -> None:
    # Given five sales near 1000 cents, one at a cent (a gift) and one at 50 dollars
    read = sales((1000, 1), (1, 1), (1020, 2), (5000, 2), (980, 3), (990, 3), (1010, 4))
    # When the reference is made
    reference = reference_of(read, NOW)
    # Then the median of all (1000) leaves the two out: the price is the five's median
    assert reference is not None
    assert (reference.price_cents, reference.order_count) == (1000, 5)
    # And the outliers still count as sales made this week
    assert reference.sales_7d == 7


def test_a_sale_at_exactly_twice_or_half_the_median_is_kept() -> None:
    reference = reference_of(sales((500, 1), (1000, 1), (2000, 1)), NOW)
    assert reference is not None
    assert (reference.price_cents, reference.order_count) == (1000, 3)


def test_outliers_move_the_price_a_plain_median_would_have() -> None:
    # Given an even count whose plain median the high outlier lifts
    read = sales((1000, 1), (1000, 1), (1200, 1), (9000, 1))
    # Then the median of all is 1100, 9000 is left out, the three left have median 1000
    reference = reference_of(read, NOW)
    assert reference is not None
    assert (reference.price_cents, reference.order_count) == (1000, 3)
    assert median([1000, 1000, 1200, 9000]) == 1100


def test_sales_7d_counts_only_the_last_seven_days_and_last_sale_at_is_the_newest() -> None:
    # Given sales spread over five weeks, newest three days ago
    read = sales((1000, 3), (1000, 6.9), (1000, 7.1), (1000, 14), (1000, 35))
    reference = reference_of(read, NOW)
    assert reference is not None
    assert reference.sales_7d == 2
    assert reference.last_sale_at == NOW - timedelta(days=3)
    assert reference.order_count == 5


def test_a_sale_exactly_seven_days_old_counts_in_the_week() -> None:
    reference = reference_of(sales((1000, 7), (1000, 8)), NOW)
    assert reference is not None and reference.sales_7d == 1


def test_a_title_not_sold_for_a_month_has_a_reference_with_no_recent_sale() -> None:
    reference = reference_of(sales((1500, 31), (1400, 45)), NOW)
    assert reference is not None
    assert (reference.price_cents, reference.sales_7d) == (1450, 0)
    assert reference.last_sale_at == NOW - timedelta(days=31)


def test_no_sale_or_nothing_but_outliers_and_zeros_is_no_reference() -> None:
    assert reference_of([], NOW) is None
    # [0, 3]: median 1, and both are outside [0.5, 2]
    assert reference_of(sales((0, 1), (3, 1)), NOW) is None
    assert reference_of(sales((0, 1)), NOW) is None


def test_parsed_sales_carry_their_price_in_cents_and_their_date_in_utc() -> None:
    body = {"sales": [{"price": "12.34", "date": "1782907200"}, {"price": "7", "date": "0"}]}
    assert parse_sales(body) == [
        Sale(1234, datetime(2026, 7, 1, 12, 0, tzinfo=UTC)),
        Sale(700, datetime(1970, 1, 1, tzinfo=UTC)),
    ]


def test_only_the_first_twenty_sales_are_read() -> None:
    body = {"sales": [{"price": "1", "date": str(n)} for n in range(25)]}
    assert len(parse_sales(body)) == 20


@pytest.mark.parametrize(
    "date",
    [
        None,
        1782907200,
        "",
        " 1782907200",
        "1782907200.5",
        "-1",
        "+1",
        "1e9",
        "2026-07-01",
        "123456789012",
        "\uff11\uff17\uff18\uff12",
    ],
)
def test_a_malformed_sale_date_is_retryable_and_named_by_its_path(date: object) -> None:
    body = {"sales": [{"price": "1.00", "date": "1"}, {"price": "1.00", "date": date}]}
    with pytest.raises(RetryableMarketError, match=r"^last sales: sales\[1\]\.date: expected"):
        parse_sales(body)


def test_a_sale_without_a_date_is_malformed() -> None:
    with pytest.raises(RetryableMarketError, match=r"sales\[0\]\.date: .*got missing"):
        parse_sales({"sales": [{"price": "1.00"}]})
