"""Judging the listings of one fetched page, by identity, until done or told to stop.

A page partly judged before (drained or paused mid-page) is fetched again on resume, and
on a live market its listings may have moved: it skips exactly the listings its earlier
parts judged, by id, and judges every other one, wherever it now stands.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from worker.db.pages import PageResult
from worker.domain.appraisal import Illiquid
from worker.domain.opportunities import Opportunity, unstorable_reason
from worker.domain.scan_params import ScanParams
from worker.markets.base import MarketSource, Page

log = logging.getLogger(__name__)

# How often a running page looks at its row for a pause or cancel from the user: an
# indexed read five times a second costs far less than the items it spares.
STATUS_POLL_SECONDS = 0.2
# total_items is a 32-bit column.
TOTAL_ITEMS_MAX = 2**31 - 1


def judge_page(
    page: Page,
    judged_before: frozenset[str],
    market: MarketSource,
    params: ScanParams,
    should_stop: Callable[[], bool],
    stopped_by_user: Callable[[], bool],
    label: str,
) -> PageResult:
    """Judge the listings of `page` not in `judged_before`, stopping early when told.

    `should_stop` is checked before every listing (drain, lost lease); `stopped_by_user`
    (a read of the row) every STATUS_POLL_SECONDS.
    """
    found: list[Opportunity] = []
    remaining = [item for item in page.items if item.item_id not in judged_before]
    judged: list[str] = []
    done = skipped = unreferenced = illiquid = 0
    if not judged_before:
        # Listings the market sent without a usable price, counted once, with the page's
        # first part.
        skipped += page.unusable
    polled_at = time.monotonic()
    for item in remaining:
        if should_stop():
            break
        if time.monotonic() - polled_at >= STATUS_POLL_SECONDS:
            polled_at = time.monotonic()
            if stopped_by_user():
                break
        inspected = market.inspect(item)
        if inspected.reference_price_cents is None:
            unreferenced += 1
        opportunity = params.judge(inspected)
        if isinstance(opportunity, Illiquid):
            illiquid += 1
        elif opportunity is not None:
            if (reason := unstorable_reason(opportunity)) is None:
                found.append(opportunity)
            else:
                # One odd listing must not fail a scan of thousands: walk past it, count it.
                log.warning("%s: skipping item %r: %s", label, item.item_id, reason)
                skipped += 1
        done += 1
        if "\x00" not in item.item_id:  # a text[] cannot hold it; such a listing is re-judged
            judged.append(item.item_id)
    total = _storable_total(label, page.total)
    return PageResult(
        items_done=done,
        page_complete=done == len(remaining),
        next_cursor=page.next_cursor,
        total_items=total,
        opportunities=tuple(found),
        skipped=skipped,
        unreferenced=unreferenced,
        illiquid=illiquid,
        note=page.end_note,
        total_is_lower_bound=total is not None and page.total_is_lower_bound,
        judged_ids=tuple(judged),
    )


def _storable_total(label: str, total: int | None) -> int | None:
    """The market's total if total_items can hold it; else unknown, as if not reported."""
    if total is not None and total > TOTAL_ITEMS_MAX:
        log.warning("%s: market total %d is beyond %d; ignored", label, total, TOTAL_ITEMS_MAX)
        return None
    return total
