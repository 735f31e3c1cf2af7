"""The SQL of the metrics: tallies written inside the transactions that change the rows,
and the fleet's counts read from them at scrape time.

A counter of committed work is what the chain's stored rows hold (DESIGN invariant 10
holds by construction: a page adds to the rows only by committing, once) plus what cleanup
took out of the rows, tallied in the delete's own transaction. What the stored rows hold
is itself tallied by triggers in the statements that write them (worker.db.row_tallies),
so a scrape reads a few dozen rows, never every stored one.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from models import RUNNER_CHAIN, MetricTally, ScanCheckpoint
from worker.db import row_tallies
from worker.domain.status import ScanStatus
from worker.domain.watermark import Watermark

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


def retirement(gone: row_tallies.Stored) -> dict[tuple[str, str], int]:
    """What the tallies gain when cleanup takes out the rows that counted `gone`: the
    chain's work they held, and the checkpoints deleted."""
    return {
        (RETIRED_PAGES, ""): gone.pages,
        (RETIRED_ITEMS, ""): gone.items,
        (RETIRED_SKIPPED, ""): gone.skipped,
        (RETIRED_OPPORTUNITIES, ""): gone.opportunities,
        (CLEANUP_ROWS_DELETED, ""): gone.checkpoints,
    }


def read(session: Session) -> dict[tuple[str, str], int]:
    """Every tally, by (name, label)."""
    rows = session.execute(select(_tallies.c.name, _tallies.c.label, _tallies.c.value))
    return {(row.name, row.label): int(row.value) for row in rows}


@dataclass(frozen=True)
class FreshRows:
    """The fresh watches' scans: the worst lag of a running one, polls and gaps of all."""

    lag_seconds: float
    polls: int
    gaps: int
    gap_seconds: int


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
    fresh: FreshRows = FreshRows(0.0, 0, 0, 0)


_CHAIN_IN_PROGRESS = (_rows.runner == RUNNER_CHAIN, _rows.status == ScanStatus.IN_PROGRESS.value)


def _age(moment: Any) -> ColumnElement[Any]:
    return func.coalesce(func.extract("epoch", func.now() - func.min(moment)), 0)


def fleet_rows(session: Session) -> FleetRows:
    """The stored rows' counts and the oldest waits; two reads, neither of which grows with
    the stored rows: the counts are the row tallies', the waits are read from the running
    scans alone (through the status index)."""
    stored = row_tallies.read(session)
    ages = session.execute(
        select(
            _age(_rows.queued_at).label("queued"),
            _age(_rows.timestamp).label("commit"),
        ).where(*_CHAIN_IN_PROGRESS)
    ).one()
    return FleetRows(
        fresh=fresh_rows(session),
        scans_by_status=dict(stored.scans_by_status),
        pages=stored.pages,
        items=stored.items,
        skipped=stored.skipped,
        opportunities=stored.opportunities,
        oldest_queued_age_seconds=float(ages.queued),
        stalest_commit_age_seconds=float(ages.commit),
    )


def fresh_rows(session: Session) -> FreshRows:
    """Read from the running and paused fresh watches' scans (their cursor is the
    watermark, worker.domain.watermark), through the status index: the rows read are the
    fleet's live fresh watches, however many scans are stored, and are summed here."""
    rows = session.execute(
        select(_rows.status, _rows.page_seq, _rows.cursor).where(
            _rows.status.in_([ScanStatus.IN_PROGRESS.value, ScanStatus.PAUSED.value]),
            _rows.params["fresh"].as_boolean().is_(True),
            _rows.cursor.is_not(None),
        )
    ).all()
    now = time.time()
    lag = polls = gaps = gap_seconds = 0.0
    for row in rows:
        watermark = Watermark.from_cursor(row.cursor)
        if row.status == ScanStatus.IN_PROGRESS.value:
            lag = max(lag, watermark.lag_seconds(now))
        polls += row.page_seq
        gaps += watermark.gaps
        gap_seconds += watermark.gap_seconds
    return FreshRows(lag, int(polls), int(gaps), int(gap_seconds))
