"""The SQL of the metrics: tallies written inside the transactions that change the rows,
and the fleet's counts read from the rows themselves at scrape time.

A counter of committed work is the sum of what the chain's rows hold (DESIGN invariant 10
holds by construction: a page adds to the rows only by committing, once) plus what
cleanup took out of the rows, tallied in the delete's own transaction. So no page commit
writes anything more, and no two commits ever wait on one counter row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models import RUNNER_CHAIN, MetricTally, ScanCheckpoint, ScanOpportunity
from worker.domain.status import ScanStatus

# Tally names: what cleanup retired from the rows, recoveries by cause, cleanup's runs,
# watch slots by outcome.
RETIRED_PAGES = "retired_pages"
RETIRED_ITEMS = "retired_items"
RETIRED_SKIPPED = "retired_skipped"
RETIRED_OPPORTUNITIES = "retired_opportunities"
RECOVERIES = "recoveries"
# Watch slots by what became of them (worker.db.watch_slots tallies them in the move).
WATCH_PASSES = "watch_passes"
WATCH_STARTED = "started"
WATCH_SKIPPED = "skipped"
WATCH_MISSED = "missed"
WATCH_OUTCOMES = (WATCH_STARTED, WATCH_SKIPPED, WATCH_MISSED)
CLEANUP_ROWS_DELETED = "cleanup_rows_deleted"
CLEANUP_LAST_SUCCESS = "cleanup_last_success_unix"

_tallies = cast(Table, MetricTally.__table__)
_rows = ScanCheckpoint


def add(session: Session, amounts: Mapping[tuple[str, str], int]) -> None:
    """Add `amounts` ((name, label) -> n) to the tallies, in the caller's transaction."""
    for (name, label), amount in amounts.items():
        if amount:
            _upsert(session, name, label, amount, _tallies.c.value + amount)


def raise_to(session: Session, name: str, value: int | ColumnElement[Any]) -> None:
    """Set tally `name` to `value` unless it holds more already (a timestamp)."""
    _upsert(session, name, "", value, func.greatest(_tallies.c.value, value))


def _upsert(
    session: Session,
    name: str,
    label: str,
    value: int | ColumnElement[Any],
    on_conflict: ColumnElement[Any],
) -> None:
    statement = insert(_tallies).values(name=name, label=label, value=value)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[_tallies.c.name, _tallies.c.label], set_={"value": on_conflict}
        )
    )


def read(session: Session) -> dict[tuple[str, str], int]:
    """Every tally, by (name, label)."""
    rows = session.execute(select(_tallies.c.name, _tallies.c.label, _tallies.c.value))
    return {(row.name, row.label): int(row.value) for row in rows}


@dataclass(frozen=True)
class FleetRows:
    """What the rows say right now, for the scrape."""

    scans_by_status: dict[str, int]
    pages: int
    items: int
    skipped: int
    opportunities: int
    oldest_queued_age_seconds: float
    stalest_commit_age_seconds: float


_CHAIN = _rows.runner == RUNNER_CHAIN
_CHAIN_IN_PROGRESS = (_CHAIN, _rows.status == ScanStatus.IN_PROGRESS.value)


def _age(moment: Any) -> ColumnElement[Any]:
    return func.coalesce(func.extract("epoch", func.now() - func.min(moment)), 0)


def fleet_rows(session: Session) -> FleetRows:
    """Counts by status, the chain's committed work, and the oldest waits; four reads."""
    by_status = {
        str(status): int(count)
        for status, count in session.execute(
            select(_rows.status, func.count()).group_by(_rows.status)
        )
    }
    work = session.execute(
        select(
            func.coalesce(func.sum(_rows.page_seq), 0),
            func.coalesce(func.sum(_rows.processed_items), 0),
            func.coalesce(func.sum(_rows.skipped_items), 0),
        ).where(_CHAIN)
    ).one()
    opportunities = session.scalar(select(func.count()).select_from(ScanOpportunity)) or 0
    ages = session.execute(
        select(
            _age(_rows.queued_at).label("queued"),
            _age(_rows.timestamp).label("commit"),
        ).where(*_CHAIN_IN_PROGRESS)
    ).one()
    return FleetRows(
        scans_by_status={status.value: by_status.get(status.value, 0) for status in ScanStatus},
        pages=int(work[0]),
        items=int(work[1]),
        skipped=int(work[2]),
        opportunities=int(opportunities),
        oldest_queued_age_seconds=float(ages.queued),
        stalest_commit_age_seconds=float(ages.commit),
    )
