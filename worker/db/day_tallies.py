"""What a day's partitions count, read for the tallies before the day is detached: the
chain's pages, items and skipped items and the rows of its checkpoints, and its finds.

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
from worker.db import tallies

# Heap blocks a piece reads: 32 MB of 8 kB blocks.
PIECE_BLOCKS = 4096
_CHECKPOINT_SUMS = (
    "SELECT count(*) AS rows,"
    " coalesce(sum(page_seq) FILTER (WHERE runner = :chain), 0) AS pages,"
    " coalesce(sum(processed_items) FILTER (WHERE runner = :chain), 0) AS items,"
    " coalesce(sum(skipped_items) FILTER (WHERE runner = :chain), 0) AS skipped"
)
_NAMES = {
    "rows": tallies.CLEANUP_ROWS_DELETED,
    "pages": tallies.RETIRED_PAGES,
    "items": tallies.RETIRED_ITEMS,
    "skipped": tallies.RETIRED_SKIPPED,
}


def counts_of(
    session: Session,
    checkpoints: str | None,
    opportunities: str | None,
    pace: Callable[[float], None],
    clock: Callable[[], float],
    piece_blocks: int = PIECE_BLOCKS,
) -> dict[tuple[str, str], int]:
    """The tallies' amounts of the day tables `checkpoints` and `opportunities` (either may
    be None: no such partition), read `piece_blocks` heap blocks at a time."""
    session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    counts = dict.fromkeys(((name, "") for name in _NAMES.values()), 0)
    counts[(tallies.RETIRED_OPPORTUNITIES, "")] = 0
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
                name = _NAMES[key] if table == checkpoints else tallies.RETIRED_OPPORTUNITIES
                counts[(name, "")] += int(amount)
            pace(clock() - started)
    return counts


def _pieces(session: Session, table: str, piece_blocks: int) -> Iterator[str]:
    blocks: Any = session.scalar(
        text("SELECT pg_relation_size(CAST(:table AS regclass)) / 8192"), {"table": table}
    )
    start = 0
    while start + piece_blocks < int(blocks or 0):
        yield f"ctid >= '({start},0)'::tid AND ctid < '({start + piece_blocks},0)'::tid"
        start += piece_blocks
    yield f"ctid >= '({start},0)'::tid"
