"""6. Cleanup under load, paired with the scan alone: a zero-latency scan runs on one
worker (prefork, concurrency 1) while, three times over, 1,000,000 terminal checkpoints
created and last updated 30 days ago are bulk-inserted (generate_series, then VACUUM ANALYZE
and a CHECKPOINT, as 30 days of autovacuum and checkpoints would have left them) into their
day's partition, made first by the production function
(worker.db.opportunity_days.make_day), as the daily cleanup would have made it a week
ahead; after a quiet stretch (10 s the first time, 5 s later) the production cleanup
(worker.db.retention.cleanup_old_checkpoints, 7 days: the finished day is dropped whole,
MARKETSCAN_CLEANUP_BATCH_SIZE rows per batch, paced by MARKETSCAN_CLEANUP_PAUSE_RATIO, for
whatever no drop takes) removes them from the bench process, which then checks that every
one of them is gone. Each cleanup is paired with a window of the scan alone of as many page
intervals: its last intervals before the cleanup in the first and third pair, its first
intervals a second after the cleanup in the second, so the scan-alone windows lie on both
sides of a cleanup.
Measured: the cleanup's rows/s and WAL bytes, and per pair the worst page interval of each
window against the median page before the first cleanup (page commit times from the
database, cleanup start and end from its clock), and the cleanup phase that worst page
fell in (the tally read, the detach, the drop of the detached tables, or the deletes after
it, told apart by the statements the cleanup's connection sends). Met when the median over
pairs of the cleanup windows' worst is within 3x, or no worse than the scan-alone windows'
median worst.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bench import cleanup_notes
from bench.kit import dataset, scans
from bench.kit.database import Connection, connect, scalar
from bench.kit.harness import Bench, say
from bench.kit.report import Row, median, ms
from worker.db import driver_url
from worker.db import opportunity_days as days_sql
from worker.db.retention import cleanup_old_checkpoints
from worker.settings import get_settings

NAME = "cleanup"
# Each pair's cleanup drops a fresh day of the full 1,000,000 rows, inserted while the scan
# runs just before it, rather than the million split in pieces across the pairs: what a
# page feels of a drop grows with the day (the paced read that tallies it, the unlinking
# of its files, both late in the cleanup, where its worst pages fall), so a third of a day
# would make shorter, lighter cleanup windows and an easier figure than the one the goal is
# about. The price is run time: an insert, its VACUUM and CHECKPOINT take 1 to 4 minutes
# on the shared 2-core machine, by its load, and the pairs make three of them.
PAIRS = 3
# The first quiet stretch gives the median page every window is compared with.
BASELINE_S = 10.0
# Later ones, between a pair's insert and its cleanup: several times a cleanup's length,
# so a scan-alone window of as many intervals fits in it.
QUIET_S = 5.0
# Between a cleanup's end and a scan-alone window after it: the cleanup's connection gone.
SETTLE_S = 1.0
# The scan-alone window after a cleanup is given this many times the cleanup's length (and
# a second), ample for as many intervals unless the machine slows down meanwhile.
AFTER_FACTOR = 3.0
AGE_DAYS = 30
# Make the day while the scan runs: its page commits may hold the parents' locks past the
# partition's short lock timeout.
MAKE_DAY_TRIES = 20
# Checkpoints started by WAL volume (the cleanup's) rather than by checkpoint_timeout.
CHECKPOINTS_SQL = "SELECT checkpoints_req FROM pg_stat_bgwriter"
LEFT_SQL = "SELECT count(*) FROM scan_checkpoints WHERE created_at < now() - interval '7 days'"


@dataclass(frozen=True)
class Marks:
    """One pair's timeline on the database's clock, and what its cleanup did."""

    quiet_from: float
    cleanup_from: float
    cleanup_to: float
    after_to: float
    deleted: int
    elapsed_s: float
    wal_bytes: float
    checkpoints: int
    # The cleanup's phases: (name, start, end) on the host's wall clock, the database's too.
    phases: tuple[tuple[str, float, float], ...]


class Phases:
    """The phases of one cleanup, told apart by the statements its connection sends: the
    read that tallies the day (from the start to the LOCK TABLE), the detach (to the first
    DROP), the drop of the detached tables (to the first statement after the last DROP, its
    commit included), and the rest (the deletes' batches). The host's wall clock is the
    database's: the bench's database runs on the same machine."""

    def __init__(self) -> None:
        self.started = time.time()
        self.lock_at: float | None = None
        self.first_drop_at: float | None = None
        self.after_drop_at: float | None = None
        self.last_was_drop = False

    def saw(self, statement: str) -> None:
        at, words = time.time(), statement.lstrip().upper()
        drop = words.startswith("DROP ")
        if words.startswith("LOCK TABLE") and self.lock_at is None:
            self.lock_at = at
        if drop:
            self.first_drop_at = self.first_drop_at or at
            self.after_drop_at = None
        elif self.last_was_drop:
            self.after_drop_at = at
        self.last_was_drop = drop

    def spans(self, ended: float) -> tuple[tuple[str, float, float], ...]:
        marks = [
            ("tally read", self.started),
            ("detach", self.lock_at),
            ("drop", self.first_drop_at),
            ("after", self.after_drop_at or (ended if self.first_drop_at else None)),
        ]
        known = [(name, at) for name, at in marks if at is not None] + [("", ended)]
        return tuple(
            (name, start, end)
            for (name, start), (_, end) in itertools.pairwise(known)
            if end > start
        )


def run(bench: Bench) -> list[Row]:
    rows = bench.size(1_000_000, 100_000)
    settings = get_settings()
    batch_size, pause_ratio = settings.cleanup_batch_size, settings.cleanup_pause_ratio
    with bench.database(NAME) as url:
        connection = connect(url)
        _insert_day(connection, url, rows)
        bench.start_worker(bench.worker_env(url), "clean@bench")
        scan_id = scans.start(url, scans.params(10_000_000))
        scans.wait_for_page(connection, scan_id, 10)
        marks: list[Marks] = []
        for number in range(PAIRS):
            if number:
                _insert_day(connection, url, rows)
            quiet_s = QUIET_S if number else BASELINE_S
            marks.append(_pair(connection, url, quiet_s, batch_size, pause_ratio))
            assert marks[-1].deleted == rows, f"cleanup removed {marks[-1].deleted} of {rows}"
            left = scalar(connection, LEFT_SQL)
            assert left == 0, f"{left} old rows left after cleanup {number + 1}"
        scans.cancel(url, scan_id)
        gaps = scans.page_gaps(scans.page_commit_times(connection, scan_id))
        connection.close()
    first = marks[0]
    before = [gap for at, gap in gaps if first.quiet_from < at <= first.cleanup_from]
    pairs = [_paired(gaps, mark, number) for number, mark in enumerate(marks)]
    for number, pair in enumerate(pairs, 1):
        say(
            f"{NAME}: pair {number}: {pair.deleted:,} rows in {pair.elapsed_s:.1f}s; worst "
            f"page {ms(max(pair.during))} during, {ms(max(pair.alone))} alone "
            f"({pair.alone_side}) vs median {ms(median(before))} before"
        )
    return [cleanup_notes.row(pairs, before, batch_size, pause_ratio)]


def _insert_day(connection: Connection, url: str, rows: int) -> None:
    """The day `AGE_DAYS` back, made and filled with `rows` finished checkpoints, flushed."""
    inserted_at = time.monotonic()
    _make_day(url, AGE_DAYS)
    dataset.insert_checkpoints(connection, rows, users=100_000, age_days_sql=str(AGE_DAYS))
    # Without it the checkpoint that flushes the insert itself lands in the cleanup.
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    say(f"{NAME}: {rows:,} old rows inserted in {time.monotonic() - inserted_at:.0f}s")


def _make_day(url: str, days_ago: int) -> None:
    """Make the partitions of the day `days_ago` days back, as cleanup made it back then."""
    engine = create_engine(driver_url(url))
    try:
        for attempt in range(MAKE_DAY_TRIES):
            with Session(engine) as session:
                try:
                    day = days_sql.today(session) - timedelta(days=days_ago)
                    days_sql.make_day(session, day)
                    session.commit()
                    return
                except DBAPIError:
                    session.rollback()
                    if attempt + 1 == MAKE_DAY_TRIES:
                        raise
            time.sleep(0.1)
    finally:
        engine.dispose()


def _pair(
    connection: Connection, url: str, quiet_s: float, batch_size: int, pause_ratio: float
) -> Marks:
    """A quiet stretch, the cleanup, and room after it for a scan-alone window."""
    quiet_from = scans.server_clock(connection)
    time.sleep(quiet_s)
    cleanup_from = scans.server_clock(connection)
    checkpoints_from = scalar(connection, CHECKPOINTS_SQL)
    deleted, elapsed, wal_bytes, phases = _cleanup(connection, url, batch_size, pause_ratio)
    checkpoints = scalar(connection, CHECKPOINTS_SQL) - checkpoints_from
    cleanup_to = scans.server_clock(connection)
    time.sleep(SETTLE_S + AFTER_FACTOR * (cleanup_to - cleanup_from) + 1.0)
    return Marks(
        quiet_from=quiet_from,
        cleanup_from=cleanup_from,
        cleanup_to=cleanup_to,
        after_to=scans.server_clock(connection),
        deleted=deleted,
        elapsed_s=elapsed,
        wal_bytes=wal_bytes,
        checkpoints=checkpoints,
        phases=phases,
    )


def _cleanup(
    connection: Connection, url: str, batch_size: int, pause_ratio: float
) -> tuple[int, float, float, tuple[tuple[str, float, float], ...]]:
    """The production cleanup of 7 days: rows removed, seconds taken, WAL bytes written,
    and its phases."""
    engine = create_engine(driver_url(url))
    phases = Phases()
    event.listen(
        engine,
        "before_cursor_execute",
        lambda _conn, _cursor, statement, *_: phases.saw(statement),
    )
    wal_from = scalar(connection, "SELECT pg_current_wal_lsn()")
    started = time.monotonic()
    try:
        with Session(engine) as session:
            deleted = cleanup_old_checkpoints(session, 7, batch_size, pause_ratio)
    finally:
        engine.dispose()
    elapsed = time.monotonic() - started
    wal_sql = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)"
    wal_bytes = float(scalar(connection, wal_sql, (wal_from,)))
    return deleted, elapsed, wal_bytes, phases.spans(time.time())


def _paired(gaps: list[tuple[float, float]], mark: Marks, number: int) -> cleanup_notes.Pair:
    """The pair's cleanup window and its scan-alone twin of as many page intervals: before
    the cleanup in even pairs, after it in odd ones (the other side if that one is short)."""
    during = [(at, gap) for at, gap in gaps if mark.cleanup_from < at <= mark.cleanup_to]
    count = len(during)
    assert count > 0, f"no page committed during cleanup {number + 1}"
    quiet = [gap for at, gap in gaps if mark.quiet_from < at <= mark.cleanup_from]
    after = [gap for at, gap in gaps if mark.cleanup_to + SETTLE_S < at <= mark.after_to]
    sides = {"before": quiet[-count:], "after": after[:count]}
    order = ("before", "after") if number % 2 == 0 else ("after", "before")
    side = next((side for side in order if len(sides[side]) == count), None)
    assert side is not None, f"no scan-alone window of {count} intervals by cleanup {number + 1}"
    worst_at, worst = max(during, key=lambda timed: timed[1])
    return cleanup_notes.Pair(
        during=[gap for _, gap in during],
        alone=sides[side],
        alone_side=side,
        worst_at_s=worst_at - mark.cleanup_from,
        worst_in=_phase_of(mark.phases, worst_at - worst, worst_at),
        phases_s={name: end - start for name, start, end in mark.phases},
        deleted=mark.deleted,
        elapsed_s=mark.elapsed_s,
        wal_bytes=mark.wal_bytes,
        checkpoints=mark.checkpoints,
    )


def _phase_of(phases: tuple[tuple[str, float, float], ...], start: float, end: float) -> str:
    """The phase the page interval from `start` to `end` overlaps most."""
    overlaps = {name: min(end, to) - max(start, since) for name, since, to in phases}
    name, overlap = max(overlaps.items(), key=lambda item: item[1], default=("", 0.0))
    return name if overlap > 0 else "none"
