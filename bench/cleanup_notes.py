"""Figure 6's row: each cleanup's worst page against the scan alone's over as many page
intervals, judged over the pairs, and what is left when the cleanup still adds to the noise.

The goal is "<= 3x the median page before, or shown to be the machine's own noise by a
paired run of the scan alone": the median over pairs of the cleanup windows' worst ratio
either is within 3x or is no worse than the same median of the scan-alone windows.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench.kit.report import Row, median, ms
from worker.db import opportunity_days as days_sql

GOAL_RATIO = 3.0


@dataclass(frozen=True)
class Pair:
    """One cleanup and its scan-alone twin on the same running scan: the page intervals
    (seconds) of each window, and what the cleanup did."""

    during: list[float]
    alone: list[float]
    # Where the scan-alone window lies: "before" or "after" the cleanup.
    alone_side: str
    # When the cleanup window's worst page committed, from the cleanup's start.
    worst_at_s: float
    # The cleanup phase its interval overlapped most (bench.cleanup.Phases), and how long
    # each phase took, in seconds.
    worst_in: str
    phases_s: dict[str, float]
    deleted: int
    elapsed_s: float
    wal_bytes: float
    checkpoints: int

    def ratios(self, median_before: float) -> tuple[float, float]:
        """(cleanup window's worst, scan alone's worst), each over the median page before."""
        return max(self.during) / median_before, max(self.alone) / median_before


def row(pairs: Sequence[Pair], before: list[float], batch_size: int, pause_ratio: float) -> Row:
    median_before = median(before)
    ratios = [pair.ratios(median_before) for pair in pairs]
    cleanup = median([during for during, _ in ratios])
    alone = median([alone for _, alone in ratios])
    met = cleanup <= GOAL_RATIO or cleanup <= alone
    elapsed = median([pair.elapsed_s for pair in pairs])
    each = ", ".join(f"{during:.1f}x/{alone:.1f}x" for during, alone in ratios)
    return Row(
        figure=f"6 cleanup of {pairs[0].deleted:,} old terminal rows during a scan",
        measured=f"{median([pair.deleted / pair.elapsed_s for pair in pairs]):,.0f} rows/s "
        f"({elapsed:.1f} s, batches of {batch_size}, pause ratio {pause_ratio:g}, WAL "
        f"{median([pair.wal_bytes for pair in pairs]) / 1e6:,.0f} MB; medians of "
        f"{len(pairs)} cleanups)",
        floor=f"worst page over the median {ms(median_before)} before, median of "
        f"{len(pairs)} pairs: cleanup {cleanup:.1f}x, scan alone {alone:.1f}x (cleanup/alone "
        f"by pair: {each})",
        goal=f"<= {GOAL_RATIO:g}x, or no worse than the scan alone",
        met=met,
        note="" if met else _missed(pairs, ratios, cleanup, alone),
        detail=_detail(pairs, before),
    )


def _detail(pairs: Sequence[Pair], before: list[float]) -> str:
    median_before = median(before)
    lines = [
        f"{len(before)} page intervals before the first cleanup: median {ms(median_before)}, "
        f"p99 {ms(_p99(before))}, worst {ms(max(before))} "
        f"({max(before) / median_before:.1f}x, no cleanup running)."
    ]
    for number, pair in enumerate(pairs, 1):
        during, alone = pair.ratios(median_before)
        lines.append(
            f"Pair {number}: {len(pair.during)} page intervals during the cleanup, median "
            f"{ms(statistics.median(pair.during))}, p99 {ms(_p99(pair.during))}, worst "
            f"{ms(max(pair.during))} ({during:.1f}x, {pair.worst_at_s:.2f} s into the "
            f"cleanup's {pair.elapsed_s:.2f} s, in its {pair.worst_in} phase; phases "
            f"{_phases(pair)}); the scan alone {pair.alone_side} it, as many "
            f"intervals: median {ms(statistics.median(pair.alone))}, worst "
            f"{ms(max(pair.alone))} ({alone:.1f}x); {pair.deleted:,} rows, WAL "
            f"{pair.wal_bytes / 1e6:,.1f} MB ({pair.wal_bytes / max(pair.deleted, 1):,.1f} B "
            f"a row), {pair.checkpoints} checkpoints requested."
        )
    lines.append(
        "Every row lies in one finished day, so the cleanup drops that day's partitions of "
        "checkpoints and opportunities whole: it reads the day to tally what its rows "
        "counted (in pieces of heap blocks, pausing as the deletes do, under no lock a page "
        "waits for), holds both tables' locks for the moment of detaching it (asked for with "
        f"a {days_sql.LOCK_TIMEOUT_MS} ms lock timeout), then drops the detached tables, "
        "which no page touches. Rows deleted one by one (a day a live scan keeps) still pay "
        "a full-page image per heap page touched."
    )
    return " ".join(lines)


def _missed(
    pairs: Sequence[Pair], ratios: list[tuple[float, float]], cleanup: float, alone: float
) -> str:
    worse = sum(1 for during, alone_ratio in ratios if during > alone_ratio)
    when = ", ".join(
        f"{pair.worst_at_s:.2f} of {pair.elapsed_s:.2f} s ({pair.worst_in})" for pair in pairs
    )
    phases = {pair.worst_in for pair in pairs}
    noise = (
        f" In {len(pairs) - worse} of {len(pairs)} pairs the scan alone's worst page was the "
        f"larger, so at {len(pairs)} pairs the difference is not clear of this machine's "
        f"noise; more pairs (PAIRS in bench/cleanup.py) on a quieter machine would settle it."
        if worse < len(pairs)
        else ""
    )
    causes = {
        "tally read": "the read of the day that tallies its rows (paced, yet a core of two "
        "while it reads)",
        "detach": f"the detach's moment under both tables' locks (a page commit that comes "
        f"while the LOCK TABLE waits for a running one queues behind it, up to the "
        f"{days_sql.LOCK_TIMEOUT_MS} ms lock timeout, then waits out the detach)",
        "drop": "the drop of the detached tables, whose files are truncated at its commit, "
        "and freeing a file's blocks can slow every fsync meanwhile (a file system that "
        "discards freed blocks at once does), the scan's WAL flushes included",
        "after": "the deletes of what no drop takes",
    }
    only = next(iter(phases)) if len(phases) == 1 else ""
    where = (
        f"Its worst pages all fell in its {only} phase (a median "
        f"{median([pair.phases_s.get(only, 0.0) for pair in pairs]):.2f} s of the cleanup): "
        f"{causes[only]}."
        if only in causes
        else "Its phases are " + "; ".join(causes.values()) + "."
    )
    return (
        f"Over {len(pairs)} pairs the cleanup window's worst page is a median {cleanup:.1f}x "
        f"the median page before, the scan alone's over as many page intervals {alone:.1f}x: "
        f"the cleanup adds {cleanup - alone:.1f} median pages to the worst one over the "
        f"machine's own noise, worse in {worse} of {len(pairs)} pairs (its worst pages came "
        f"at {when} into the cleanups).{noise} What is left is the cleanup's own cost to a "
        f"page. {where}"
    )


def _phases(pair: Pair) -> str:
    return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in pair.phases_s.items())


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values)
