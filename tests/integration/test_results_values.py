"""What users see of a scan's finds (results, the CLI table, the bot's /top, alerts) stays
value for value what it was before opportunities were stored compactly.

The first golden file was written by this very test against the schema of revision 0006,
where fee, profit and profit percent were stored columns; the compact schema derives them
from the prices and the scan's frozen fee, and a find stored before revision 0014 (without
how it was judged) must still print the same. A find judged since states its fee, exits,
sales and lock, its fee rounded up to a cent (worker.domain.fees.fee_cents): the second
golden file holds what those show, written by this test (MARKETSCAN_WRITE_GOLDEN=1).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import ScanOpportunity
from tests.support.scans import cli
from worker.bot.replies import top_text
from worker.chain import lifecycle as scans
from worker.chain.runner import PageContext, run_page
from worker.db import alert_finds, session_scope
from worker.db.scan_queries import top_opportunities
from worker.domain.alert import alerts_of
from worker.domain.opportunities import fee_and_profit, percent_hundredths
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.settings import get_settings

GOLDEN = Path(__file__).parent / "data" / "results_before_compaction.json"
JUDGED_GOLDEN = Path(__file__).parent / "data" / "results_judged.json"
# How a find was judged (revision 0014): none of it in a row stored before.
JUDGING_COLUMNS = (
    "fee_bps", "fee_source", "sell_now_profit_cents", "listing_profit_cents", "sales_7d",
    "last_sale_at", "locked", "lock_days",
)  # fmt: skip
# Fixed scan ids, so the texts that name a scan are comparable across runs.
SCAN_IDS = {0.07: uuid.UUID(int=0x21B07), 0.035: uuid.UUID(int=0x21B035)}
# The alerts' listing links: the default base, fixed here whatever the environment says.
LINKS = "https://dmarket.com/ingame-items/item-list/csgo-skins?userOfferId="


def _run_scan(fee: float, scan_id: uuid.UUID) -> None:
    settings = replace(get_settings(), fee=fee, slice_pages=1)
    published: list[PageMessage] = []
    params = ScanParams(game="csgo", page_size=100, market_options={"items": 1500, "seed": 21})
    with session_scope() as session:
        scans.start_scan(session, params, settings, published.append, scan_id=scan_id)
    context = PageContext(
        owner="w1@test", settings=settings, publish=published.append, sleep=lambda s: None
    )
    while published:
        run_page(published.pop(0), context)


def _seen(session: Session, env: dict[str, str], scan_id: uuid.UUID) -> dict[str, Any]:
    top = top_opportunities(session, scan_id, top=1000)
    table = cli(["scan", "results", str(scan_id), "--top", "30"], env)
    as_json = cli(["scan", "results", str(scan_id), "--top", "30", "--json"], env)
    assert table.returncode == 0 and as_json.returncode == 0, table.stderr + as_json.stderr
    finds, after = [], 0
    while page := alert_finds.next_page_finds(session, scan_id, after):
        after = page[-1].opportunity_id
        finds.append(page)
    return {
        "results": top,
        "cli_table": table.stdout,
        "cli_json": json.loads(as_json.stdout),
        "bot_top": top_text(scan_id, top[:10]),
        # The alert's cursor is the table's own id, whatever its values: compare the rest.
        "alert_finds": [[{**asdict(f), "opportunity_id": None} for f in page] for page in finds],
        # Each page's messages; the texts were rewritten when alerts came to list every find
        # with its link, from the finds above as revision 0006 stored them.
        "alert_texts": [
            [alert.text for alert in alerts_of(scan_id, page, LINKS)] for page in finds
        ],
    }


def _as_stored_before_judging(session: Session, scan_id: uuid.UUID, fee: float) -> None:
    """The scan's finds as a revision before 0014 stored them: without how they were
    judged, the profit percent that of the scan's fee rounded to the nearest cent."""
    finds = session.scalars(select(ScanOpportunity).where(ScanOpportunity.scan_id == scan_id))
    for find in finds.all():
        _, profit_cents = fee_and_profit(find.price_cents, find.reference_price_cents, fee)
        percent = round(100 * profit_cents / find.price_cents, 2)
        session.execute(
            update(ScanOpportunity)
            .where(ScanOpportunity.id == find.id, ScanOpportunity.scan_day == find.scan_day)
            .values(
                {**dict.fromkeys(JUDGING_COLUMNS), "profit_hundredths": percent_hundredths(percent)}
            )
        )
    session.commit()


def _without_judging(rows: list[dict[str, Any]], key: str | None = None) -> list[dict[str, Any]]:
    """`rows` as shown before revision 0014: its judging fields, each None, left out."""
    names = JUDGING_COLUMNS if key is None else (key,)
    for row in rows:
        assert all(row[name] is None for name in names), row
    return [{name: value for name, value in row.items() if name not in names} for row in rows]


def _table_before_judging(table: str) -> str:
    """The CLI table without the columns of how a find was judged (fee %, fee from, sell
    now $, listing $, 7d, lock: each `-` for a find stored before revision 0014)."""
    lines = table.splitlines(keepends=True)
    header, rows = lines[0], lines[1:]
    start, end = header.index("fee %") - 1, header.index("title")
    assert all(set(row[start:end]) <= {" ", "-"} for row in rows), table
    return "".join(line[:start] + line[end:] for line in lines)


def test_results_cli_bot_and_alerts_show_the_values_they_showed_before(
    env: dict[str, str], session: Session
) -> None:
    judged, before = {}, {}
    for fee, scan_id in SCAN_IDS.items():
        _run_scan(fee, scan_id)
        judged[str(fee)] = _seen(session, env, scan_id)
        _as_stored_before_judging(session, scan_id, fee)
        before[str(fee)] = _seen(session, env, scan_id)
    if os.environ.get("MARKETSCAN_WRITE_GOLDEN") == "1":
        JUDGED_GOLDEN.write_text(json.dumps(judged, indent=1, sort_keys=True) + "\n")
    # Finds judged since revision 0014 show their fee, exits, sales and lock
    golden_judged = json.loads(JUDGED_GOLDEN.read_text())
    for fee in golden_judged:
        assert judged[fee]["results"], "the scan found nothing: the comparison would be empty"
        for view, expected in golden_judged[fee].items():
            assert judged[fee][view] == expected, f"{view} at fee {fee} (judged) differs"
    # And finds stored before it show what they showed before compaction: the same values
    # and texts, bar the few finds at the margin that a fee rounded up to a cent now leaves
    # out (their alert pages compared without them)
    golden = json.loads(GOLDEN.read_text())
    for fee in golden:
        _assert_shown_as_before(before[fee], golden[fee], fee)


def _assert_shown_as_before(seen: dict[str, Any], golden: dict[str, Any], fee: str) -> None:
    kept = {row["item_id"] for row in seen["results"]}
    dropped = {row["item_id"] for row in golden["results"]} - kept
    assert kept and len(dropped) <= 2, (fee, dropped)
    assert _without_judging(seen["results"]) == [
        row for row in golden["results"] if row["item_id"] in kept
    ], f"results at fee {fee} differ"
    assert _without_judging(seen["cli_json"]) == golden["cli_json"], f"cli_json at fee {fee}"
    assert _table_before_judging(seen["cli_table"]) == golden["cli_table"], f"cli_table at {fee}"
    assert seen["bot_top"] == golden["bot_top"], f"bot_top at fee {fee} differs"
    finds = [find for page in seen["alert_finds"] for find in page]
    assert _without_judging(finds, "judging") == [
        find for page in golden["alert_finds"] for find in page if find["item_id"] in kept
    ], f"alert_finds at fee {fee} differ"
    compared = 0
    for page, texts in zip(golden["alert_finds"], golden["alert_texts"], strict=True):
        if {find["item_id"] for find in page} & dropped:
            continue
        assert texts in seen["alert_texts"], f"alert_texts at fee {fee} differ"
        compared += 1
    assert compared >= len(golden["alert_texts"]) - len(dropped)
