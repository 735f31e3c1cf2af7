"""3. Aggregate throughput: 16 scans of 100 pages started at once on one worker with two
pool processes (prefork, concurrency 2), zero market latency. Pages/s over the middle 80%
of all page commits (so the ramp-up and the last stragglers do not count), against one
chain alone on the same worker (pages/s = 1 / seconds per page). Runs alternate
(one chain of 300 pages, 16 chains) x 3; the ratio is the median of the paired ratios.
Default slice settings. The same again on a worker with four pool processes (c=4), reported
without a goal: on two cores more slots mostly add contention, which the ratio shows.
"""

from __future__ import annotations

import uuid

from bench.kit import scans
from bench.kit.database import connect
from bench.kit.harness import Bench, say
from bench.kit.report import Row, median, spread
from bench.kit.scans import chain_seconds

NAME = "throughput"
SCANS = 16
# Two pool processes on two cores: 2x is the ceiling, which PostgreSQL and Redis share.
GOAL_RATIO = 1.8


def aggregate_pages_per_second(database_url: str, scan_count: int, pages: int) -> float:
    connection = connect(database_url)
    scan_ids: list[uuid.UUID] = [
        scans.start(database_url, scans.params(pages * 100)) for _ in range(scan_count)
    ]
    for scan_id in scan_ids:
        scans.wait_for_status(connection, scan_id, timeout_s=scan_count * pages * 0.5 + 60)
    commits = sorted(
        at for scan_id in scan_ids for _, at in scans.page_commit_times(connection, scan_id)
    )
    connection.close()
    low, high = len(commits) // 10, len(commits) * 9 // 10
    return (high - low) / (commits[high] - commits[low])


def measure(bench: Bench, url: str, concurrency: int) -> tuple[list[float], list[float]]:
    """Pages/s of one chain and of SCANS chains, runs alternating, on a worker of its own."""
    pages, single_pages, runs = bench.size(100, 20), bench.size(300, 60), bench.size(3, 1)
    single: list[float] = []
    many: list[float] = []
    hostname = f"tput{concurrency}@bench"
    worker = bench.start_worker(bench.worker_env(url), hostname, concurrency=concurrency)
    for attempt in range(runs):
        single.append(1 / chain_seconds(url, single_pages))
        many.append(aggregate_pages_per_second(url, SCANS, pages))
        say(
            f"{NAME} c={concurrency} run {attempt + 1}/{runs}: one chain {single[-1]:.0f} "
            f"pages/s, {SCANS} chains {many[-1]:.0f} pages/s"
        )
    bench.stop(worker)
    return single, many


def run(bench: Bench) -> list[Row]:
    pages = bench.size(100, 20)
    with bench.database(NAME) as url:
        single, many = measure(bench, url, 2)
        single4, many4 = measure(bench, url, 4)
    # Paired: a run's 16 chains against the chain just before them, so load that drifts
    # over the figure moves both sides of a ratio.
    ratios = [both / one for both, one in zip(many, single, strict=True)]
    ratio = median(ratios)
    ratios4 = [both / one for both, one in zip(many4, single4, strict=True)]
    return [
        Row(
            figure=f"3 aggregate throughput ({SCANS} scans x {pages} pages, prefork c=2)",
            measured=f"{median(many):.0f} pages/s ({median(many) * 100:,.0f} items/s)",
            floor=f"one chain {median(single):.0f} pages/s -> {ratio:.2f}x (paired median)",
            goal=f">= {GOAL_RATIO}x one chain",
            met=ratio >= GOAL_RATIO,
            note=_note(ratio, bench),
            detail=f"{SCANS} chains {spread(many, 1, ' pages/s')}; one chain "
            f"{spread(single, 1, ' pages/s')}; paired ratios "
            f"{', '.join(f'{value:.2f}x' for value in ratios)}. The two pool processes share "
            f"two cores with the worker's main process (consuming, acking, sending events), "
            f"PostgreSQL, Redis and whatever else runs on the machine (see the load "
            f"average).{_cpu(bench)}",
        ),
        Row(
            figure=f"3 aggregate throughput ({SCANS} scans x {pages} pages, prefork c=4)",
            measured=f"{median(many4):.0f} pages/s ({median(many4) * 100:,.0f} items/s)",
            floor=f"one chain {median(single4):.0f} pages/s -> {median(ratios4):.2f}x "
            f"(paired median)",
            goal="none set (report; two cores)",
            met=None,
            detail=f"c=4: {SCANS} chains {spread(many4, 1, ' pages/s')}; one chain "
            f"{spread(single4, 1, ' pages/s')}; paired ratios "
            f"{', '.join(f'{value:.2f}x' for value in ratios4)}.",
        ),
    ]


def _cpu(bench: Bench) -> str:
    parts = bench.page_breakdown
    if parts is None:
        return ""
    return (
        f" In figure 1's in-process page {parts.waiting_s / parts.total_s:.0%} is waiting "
        f"on PostgreSQL and the rest is Python; PostgreSQL runs on the same two cores, so a "
        f"chain's waiting frees little CPU for another chain."
    )


def _note(ratio: float, bench: Bench) -> str:
    parts = bench.page_breakdown
    cpu = (
        f" figure 1's in-process page is {1 - parts.waiting_s / parts.total_s:.0%} Python "
        f"and the rest waiting on PostgreSQL, which runs on the same cores;"
        if parts is not None
        else ""
    )
    return (
        f"Two slots give {ratio:.2f}x one chain, not 2x: the two pool processes share two "
        f"cores with the worker's main process (receiving, acking, sending events),{cpu} "
        f"Redis and the rest of the machine. Under the backlog 16 scans make, a slice still "
        f"walks its pages for up to MARKETSCAN_SLICE_BACKLOG_MS (figure 3b judges the "
        f"fairness of that), so their tasks pay a hop per slice as one chain alone does. "
        f"What would close it: less CPU per page outside the pool (fewer events and round "
        f"trips per hop) and less Python per page; more cores than two."
    )
