"""What the stored rows count (models.row_tally): read by the exporter, and taken out for
the rows no trigger sees leave, a day that cleanup detaches.

The triggers of revision 0011 keep `row_tallies` in the statements that insert, update or
delete checkpoints and opportunities, each transaction in one shard, so reading the counts
is a sum over a few dozen rows, however many rows are stored. A day's partitions leave
whole, by DETACH, which fires no trigger: `forget` takes what its rows counted out, through
the function the triggers add with, in the detaching transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, func, select, text
from sqlalchemy.orm import Session

from models import RowTally
from worker.domain.status import ScanStatus

_tallies = cast(Table, RowTally.__table__)
_STATUS_COLUMNS = {status.value: _tallies.c[f"scans_{status.value}"] for status in ScanStatus}
_COUNT_COLUMNS = ("chain_pages", "chain_items", "chain_skipped", "opportunities")
_ADD = text(
    "SELECT row_tallies_add("
    + ", ".join(f":{column}" for column in (*_STATUS_COLUMNS, *_COUNT_COLUMNS))
    + ")"
)


@dataclass(frozen=True)
class Stored:
    """What stored rows count: checkpoints by status (every runner's, every status
    present), the page chain's pages, items and skipped items, and opportunities."""

    scans_by_status: Mapping[str, int]
    pages: int
    items: int
    skipped: int
    opportunities: int

    @property
    def checkpoints(self) -> int:
        return sum(self.scans_by_status.values())


def read(session: Session) -> Stored:
    """The counts of every stored row: one read of the shards."""
    sums = session.execute(
        select(
            *(func.coalesce(func.sum(column), 0) for column in _STATUS_COLUMNS.values()),
            *(func.coalesce(func.sum(_tallies.c[name]), 0) for name in _COUNT_COLUMNS),
        )
    ).one()
    by_status = dict(zip(_STATUS_COLUMNS, (int(value) for value in sums), strict=False))
    pages, items, skipped, opportunities = (int(value) for value in sums[len(_STATUS_COLUMNS) :])
    return Stored(by_status, pages, items, skipped, opportunities)


def forget(session: Session, gone: Stored) -> None:
    """Take rows that left without a DELETE (a detached day) out of the counts, in the
    caller's transaction."""
    amounts = {status: -gone.scans_by_status.get(status, 0) for status in _STATUS_COLUMNS}
    session.execute(
        _ADD,
        {
            **amounts,
            "chain_pages": -gone.pages,
            "chain_items": -gone.items,
            "chain_skipped": -gone.skipped,
            "opportunities": -gone.opportunities,
        },
    )
