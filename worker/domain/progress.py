"""Where a scan stands (ScanProgress), and its total as the market reports it: exact, or
only "at least N".

DMarket caps the total it reports at 10,000, and a live listing can grow past the total it
gave: then the total is a lower bound, N is the larger of the reported total and the items
processed, and a view shows "at least N" instead of a share that would pass 100 %.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass


def merged_total(
    reported: int | None, processed: int, lower_bound: bool
) -> tuple[int | None, bool]:
    """The total to store after `processed` items, and whether it is a lower bound.

    The page commit runs the same rule in SQL (worker.db.page_sql); an unknown total stays
    unknown.
    """
    if reported is None:
        return None, lower_bound
    return max(reported, processed), lower_bound or processed > reported


def total_text(total: int | None, lower_bound: bool, *, symbol: bool = False) -> str:
    """The total as people read it: "10000", "at least 10600" (or "≥ 10600"), "" if unknown."""
    if total is None:
        return ""
    if not lower_bound:
        return str(total)
    return f"≥ {total}" if symbol else f"at least {total}"


def percent_done(processed: int, total: int | None, lower_bound: bool) -> int | None:
    """The share done, 0 to 100; None when there is no honest share (unknown or lower bound)."""
    if not total or lower_bound:
        return None
    return min(100 * processed // total, 100)


@dataclass(frozen=True)
class ScanProgress:
    """Where a scan stands after one of its pages, for whoever tells its user."""

    scan_id: uuid.UUID
    user_id: int
    processed: int
    total: int | None
    # The total is only "at least `total`" (merged_total above).
    total_is_lower_bound: bool = False
    # The page whose commit this reports (None: the scan's failure, not a page).
    page_seq: int | None = None
    # Whether its user is told at all (worker.domain.watch.tells_its_user).
    tell_user: bool = True
