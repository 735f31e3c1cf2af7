"""What users see of a scan's finds (results, the CLI table, the bot's /top, alerts) stays
value for value what it was before opportunities were stored compactly.

The golden file was written by this very test against the schema of revision 0006, where
fee, profit and profit percent were stored columns; the compact schema derives them from
the prices and the scan's frozen fee, and must print the same.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tests.support.scans import cli
from worker.bot.replies import top_text
from worker.chain import lifecycle as scans
from worker.chain.runner import PageContext, run_page
from worker.db import alert_finds, session_scope
from worker.db.scan_queries import top_opportunities
from worker.domain.alert import alerts_of
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.settings import get_settings

GOLDEN = Path(__file__).parent / "data" / "results_before_compaction.json"
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


def test_results_cli_bot_and_alerts_show_the_values_they_showed_before(
    env: dict[str, str], session: Session
) -> None:
    seen = {}
    for fee, scan_id in SCAN_IDS.items():
        _run_scan(fee, scan_id)
        seen[str(fee)] = _seen(session, env, scan_id)
    if os.environ.get("MARKETSCAN_WRITE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(seen, indent=1, sort_keys=True) + "\n")
    golden = json.loads(GOLDEN.read_text())
    for fee in golden:
        assert seen[fee]["results"], "the scan found nothing: the comparison would be empty"
        for view, expected in golden[fee].items():
            assert seen[fee][view] == expected, f"{view} at fee {fee} differs"
