"""What an uninterrupted, in-memory walk of a scan's market finds: the yardstick for results.

The demo prints its verdict against it, and the tests compare every crashed-and-recovered
scan with it.
"""

from __future__ import annotations

from worker.domain.opportunities import Opportunity
from worker.domain.scan_params import ScanParams
from worker.markets.registry import build_market
from worker.settings import Settings


def uninterrupted_opportunities(params: ScanParams, settings: Settings) -> list[Opportunity]:
    """Every opportunity of the market `params` describe, walked page by page in one go."""
    market = build_market(params, settings)
    found: list[Opportunity] = []
    cursor: str | None = None
    try:
        while True:
            page = market.fetch_page(cursor, params.page_size)
            found.extend(
                hit for item in page.items if isinstance(hit := params.judge(item), Opportunity)
            )
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor
    finally:
        market.close()
