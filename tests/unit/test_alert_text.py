"""An alert's text: every find of a commit on a line of its own, best profit first, with price,
reference, profit and a link to its listing; split into messages under Telegram's limit
without splitting a line or losing a find; one find is singular, long titles are cut."""

from __future__ import annotations

import re
import uuid

from worker.domain.alert import (
    MESSAGE_MAX_UNITS,
    Find,
    alerts_of,
    dollars,
    listing_link,
)

SCAN = uuid.UUID("1c9e4b2a-0000-4000-8000-000000000000")
LINKS = "https://dmarket.com/ingame-items/item-list/csgo-skins?userOfferId="


def _find(number: int, profit_cents: int, title: str = "AK-47 | Redline") -> Find:
    return Find(number, f"item-{number}", title, 4120, 5500, profit_cents, 24.4, 2)


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_every_find_is_listed_best_first_with_its_link() -> None:
    # Given three finds of one commit, When they make an alert
    [alert] = alerts_of(SCAN, [_find(1, 100), _find(2, 1005), _find(3, 500)], LINKS)
    # Then one message lists all three, best profit first, each with its listing's link
    assert alert.text.splitlines() == [
        "🔔 3 new finds (scan 1c9e4b2a, page 3)",
        f"1. AK-47 | Redline: $41.20 (reference $55.00), profit $10.05 (24.4%) {LINKS}item-2",
        f"2. AK-47 | Redline: $41.20 (reference $55.00), profit $5.00 (24.4%) {LINKS}item-3",
        f"3. AK-47 | Redline: $41.20 (reference $55.00), profit $1.00 (24.4%) {LINKS}item-1",
    ]
    # And the message carries the finds in commit order
    assert [find.opportunity_id for find in alert.finds] == [1, 2, 3]


def test_an_offer_id_is_url_quoted_in_its_link() -> None:
    # Given offer ids as DMarket gives them, and ids that would bend a URL
    uuid_id = "5b3e1c2a-9f4d-4a7a-9a51-3d2c1e0f9a88"
    # Then a UUID goes in as it is, and anything else is quoted
    assert listing_link(LINKS, uuid_id) == LINKS + uuid_id
    assert listing_link(LINKS, "a b&c=d/#é") == LINKS + "a%20b%26c%3Dd%2F%23%C3%A9"


def test_one_find_is_singular_and_a_long_title_is_cut() -> None:
    [alert] = alerts_of(SCAN, [_find(1, 100, "x" * 200)], LINKS)
    header, line = alert.text.splitlines()
    assert header == "🔔 1 new find (scan 1c9e4b2a, page 3)"
    assert "x" * 79 + "…:" in line and "x" * 81 not in line


def test_a_long_list_is_split_under_telegrams_limit_with_every_find_once() -> None:
    # Given a commit of 150 finds with the longest titles, of characters Telegram counts twice
    finds = [_find(number, 10 * number, f"{number} " + "🔥" * 100) for number in range(150)]
    # When they make alerts
    alerts = alerts_of(SCAN, finds, LINKS)
    # Then they take several messages, each within 4096 UTF-16 units
    assert len(alerts) > 1
    assert all(_units(alert.text) <= MESSAGE_MAX_UNITS for alert in alerts)
    # And every find is listed exactly once, on a whole line with its link
    listed = [
        line for alert in alerts for line in alert.text.splitlines() if not line.startswith("🔔")
    ]
    numbers = sorted(int(re.match(r"\d+\. (\d+) ", line).group(1)) for line in listed)  # type: ignore[union-attr]
    assert numbers == list(range(150))
    assert all(line.endswith(f"{LINKS}item-{line.split(' ')[1]}") for line in listed)
    # And each message lists a run of the finds in commit order, the runs one after another
    assert [find for alert in alerts for find in alert.finds] == finds
    # And every message but the last says more follow
    headers = [alert.text.splitlines()[0] for alert in alerts]
    assert all(header.endswith(", more follow") for header in headers[:-1])
    assert not headers[-1].endswith(", more follow")


def test_a_message_is_filled_before_the_next_begins() -> None:
    # Given finds whose lines make more than one message
    finds = [_find(number, number, "T" * 80) for number in range(40)]
    alerts = alerts_of(SCAN, finds, LINKS)
    first_line_of_the_second = alerts[1].text.splitlines()[1]
    # Then the first message has no room for one more line
    assert _units(alerts[0].text) + 1 + _units(first_line_of_the_second) > MESSAGE_MAX_UNITS


def test_a_line_that_alone_exceeds_the_limit_is_cut_to_it() -> None:
    # Given an absurd link base, longer than a message
    [alert] = alerts_of(SCAN, [_find(1, 100)], "https://example.com/?" + "a" * 5000)
    # Then the message is cut to the limit rather than refused by Telegram again and again
    assert _units(alert.text) == MESSAGE_MAX_UNITS and alert.text.endswith("…")


def test_dollars_show_cents_and_thousands() -> None:
    assert (dollars(5), dollars(123456), dollars(-250)) == ("$0.05", "$1,234.56", "-$2.50")


def test_a_find_judged_against_skinport_says_sell_on_skinport_its_fee_and_the_hold() -> None:
    from worker.domain.alert import Judging, judging_of_result, judging_text

    # Given a find judged against Skinport (its results row), and one against the best bid
    row = {
        "fee_bps": 800, "fee_source": "skinport", "sell_now_profit_cents": None,
        "listing_profit_cents": 328, "sales_7d": 12, "locked": False, "lock_days": None,
        "reference_kind": "skinport",
    }  # fmt: skip
    dmarket = Judging(500, "reduced", 120, 210, 12, True, 7, reference_kind="best_bid")
    # Then the Skinport one names the market, its profit there, its fee, volume and the hold
    assert judging_text(judging_of_result(row)) == (
        "sell on Skinport +$3.28 · fee 8.00% (skinport) · 12 sales/7d on Skinport · 7-day hold"
    )
    # And DMarket's reads as before
    assert judging_text(dmarket) == (
        "fee 5.00% (reduced) · sell now +$1.20 · listing +$2.10 · 12 sales/7d · locked 7d"
    )
