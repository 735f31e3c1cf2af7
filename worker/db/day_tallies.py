"""What a day's partitions count, read for the tallies before the day is detached: its
checkpoints by status, the chain's pages, items and skipped items, and its finds.

A day about to go holds only rows that no longer change, so it can be read in pieces, in
whatever transaction: each piece is a range of heap blocks (a TID range scan, no index
needed), the last one open-ended, and after each the caller's `pace` is told how long it
took, so that a day of a million rows does not take a core and the disk from the running
scans all at once. One backend reads them: parallel workers would take the cores too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from models import RUNNER_CHAIN
from worker.db import row_tallies
from worker.domain.status import ScanStatus

# Heap blocks a piece reads: 32 MB of 8 kB blocks.
PIECE_BLOCKS = 4096
_CHAIN_SUMS = {"pages": "page_seq", "items": "processed_items", "skipped": "skipped_items"}
_CHECKPOINT_SUMS = "SELECT " + ", ".join(
    [
        *(
            f"count(*) FILTER (WHERE status = '{status.value}') AS {status.value}"
            for status in ScanStatus
        ),
        *(
            f"coalesce(sum({column}) FILTER (WHERE runner = :chain), 0) AS {name}"
            for name, column in _CHAIN_SUMS.items()
        ),
    ]
)


def counts_of(
    session: Session,
    checkpoints: str | None,
    opportunities: str | None,
    pace: Callable[[float], None],
    clock: Callable[[], float],
    piece_blocks: int = PIECE_BLOCKS,
) -> row_tallies.Stored:
    """What the rows of the day tables `checkpoints` and `opportunities` count (either may
    be None: no such partition), read `piece_blocks` heap blocks at a time."""
    session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    counts = dict.fromkeys([*(status.value for status in ScanStatus), *_CHAIN_SUMS], 0)
    found = 0
    for table, select_sql in (
        (checkpoints, _CHECKPOINT_SUMS),
        (opportunities, "SELECT count(*) AS rows"),
    ):
        if table is None:
            continue
        for piece in _pieces(session, table, piece_blocks):
            started = clock()
            row = session.execute(
                text(f"{select_sql} FROM {table} WHERE {piece}"), {"chain": RUNNER_CHAIN}
            ).one()
            for key, amount in row._mapping.items():
                if table == checkpoints:
                    counts[key] += int(amount)
                else:
                    found += int(amount)
            pace(clock() - started)
    return row_tallies.Stored(
        scans_by_status={status.value: counts[status.value] for status in ScanStatus},
        pages=counts["pages"],
        items=counts["items"],
        skipped=counts["skipped"],
        opportunities=found,
    )


def _pieces(session: Session, table: str, piece_blocks: int) -> Iterator[str]:
    blocks: Any = session.scalar(
        text("SELECT pg_relation_size(CAST(:table AS regclass)) / 8192"), {"table": table}
    )
    start = 0
    while start + piece_blocks < int(blocks or 0):
        yield f"ctid >= '({start},0)'::tid AND ctid < '({start + piece_blocks},0)'::tid"
        start += piece_blocks
    yield f"ctid >= '({start},0)'::tid"
