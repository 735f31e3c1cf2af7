"""An alert's text: the best finds by profit with price, reference and profit, then the rest
counted; one find is singular, long titles are cut."""

from __future__ import annotations

import uuid

from worker.domain.alert import Find, alert_text, dollars

SCAN = uuid.UUID("1c9e4b2a-0000-4000-8000-000000000000")


def _find(number: int, profit_cents: int, title: str = "AK-47 | Redline") -> Find:
    return Find(number, f"item-{number}", title, 4120, 5500, profit_cents, 24.4, 2)


def test_the_best_finds_come_first_and_the_rest_are_counted() -> None:
    text = alert_text(SCAN, [_find(1, 100), _find(2, 1005), _find(3, 500)], top=2)
    assert text.splitlines() == [
        "🔔 3 new finds (scan 1c9e4b2a, page 3)",
        "1. AK-47 | Redline: $41.20 (reference $55.00), profit $10.05 (24.4%)",
        "2. AK-47 | Redline: $41.20 (reference $55.00), profit $5.00 (24.4%)",
        "… and 1 more",
    ]


def test_one_find_is_singular_and_a_long_title_is_cut() -> None:
    text = alert_text(SCAN, [_find(1, 100, "x" * 200)], top=5)
    header, line = text.splitlines()
    assert header == "🔔 1 new find (scan 1c9e4b2a, page 3)"
    assert "x" * 79 + "…:" in line and "x" * 81 not in line


def test_dollars_show_cents_and_thousands() -> None:
    assert (dollars(5), dollars(123456), dollars(-250)) == ("$0.05", "$1,234.56", "-$2.50")
