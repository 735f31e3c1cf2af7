"""2. Checkpoint overhead at two market latencies: 20 ms per page (chains of 150 pages) and
DMarket's real pace, 500 ms per page (`latency_ms=500`, chains of 20 pages, so it stays
affordable). Each chain is run by `marketscan.scan.page` (its commits and opportunities in
PostgreSQL) and by `bench.nodb_page`: the same run_page and the same publish-the-next-page
chain with the row's reads and writes replaced by memory (worker.testing.memory_pages,
through PageContext's `store`). Per page: first to last commit over the pages between. Runs
alternate (with, without) x 3 at each latency in one worker (prefork,
concurrency 1, default slice settings); the overhead is the median of the paired
differences over the page time without the database.
"""

from __future__ import annotations

import json
import time
import uuid

from bench.kit import scans
from bench.kit.harness import Bench, say
from bench.kit.report import Row, median, ms, spread
from bench.kit.scans import chain_seconds
from bench.kit.tasks import NODB_PAGE_TASK, nodb_key
from worker import broker_redis
from worker.app import app
from worker.settings import DEFAULT_SENTINEL_MASTER

NAME = "checkpoint-overhead"
# (market latency ms, goal as a fraction of the page without the database)
GOALS = {20: 0.05, 500: 0.005}
SEED_PROMISE_FRACTION = 0.01


def nodb_chain_seconds(
    bench: Bench, pages: int, latency_ms: int, timeout_s: float = 600.0
) -> float:
    """Seconds per page of the chain without a database."""
    scan_params = scans.params(pages * 100, latency_ms=latency_ms).to_json()
    scan_id = uuid.uuid4()
    app.send_task(NODB_PAGE_TASK, args=(str(scan_id), str(uuid.uuid4()), 0, 0, scan_params))
    client = broker_redis.new_client(bench.broker_url, DEFAULT_SENTINEL_MASTER)
    deadline = time.monotonic() + timeout_s
    while (found := client.get(nodb_key(scan_id))) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the no-database chain {scan_id} did not finish")
        time.sleep(0.1)
    client.close()
    times = sorted((int(seq), at) for seq, at in json.loads(found).items())
    return scans.seconds_per_page(times)


def run(bench: Bench) -> list[Row]:
    sizes = {
        20: (bench.size(150, 80), bench.size(3, 2)),
        500: (bench.size(20, 12), bench.size(3, 2)),
    }
    rows: list[Row] = []
    with bench.database(NAME) as url:
        bench.start_worker(bench.worker_env(url), "overhead@bench", concurrency=1)
        for latency_ms, (pages, runs) in sizes.items():
            with_db: list[float] = []
            without: list[float] = []
            for attempt in range(runs):
                with_db.append(chain_seconds(url, pages, latency_ms=latency_ms))
                without.append(nodb_chain_seconds(bench, pages, latency_ms))
                say(
                    f"{NAME} {latency_ms} ms run {attempt + 1}/{runs}: with database "
                    f"{ms(with_db[-1])}/page, without {ms(without[-1])}/page"
                )
            rows.append(_row(bench, latency_ms, pages, with_db, without))
    return rows


def _row(
    bench: Bench, latency_ms: int, pages: int, with_db: list[float], without: list[float]
) -> Row:
    goal = GOALS[latency_ms]
    paired = [(db - bare) / bare for db, bare in zip(with_db, without, strict=True)]
    overhead = median(paired)
    extra_s = median([db - bare for db, bare in zip(with_db, without, strict=True)])
    return Row(
        figure=f"2 checkpoint overhead ({pages} pages, {latency_ms} ms market latency)",
        measured=f"{overhead:+.1%} ({extra_s * 1000:+.2f} ms/page)",
        floor=f"{ms(median(without))}/page without database writes",
        goal=f"< {goal:.1%} (seed promises < {SEED_PROMISE_FRACTION:.0%})",
        met=overhead < goal,
        note=_note(extra_s, median(without), goal, bench),
        detail=f"with database {spread(with_db, 1000, ' ms')}/page; without "
        f"{spread(without, 1000, ' ms')}/page; paired overheads "
        f"{', '.join(f'{value:+.1%}' for value in paired)}.",
    )


def _note(extra_s: float, bare_s: float, goal: float, bench: Bench) -> str:
    parts = bench.page_breakdown
    measured_parts = (
        f" (figure 1 measured storing a page in-process at {ms(parts.storing_s)}: "
        f"{ms(parts.waiting_s)} waiting on PostgreSQL, {ms(parts.python_s)} of Python)"
        if parts is not None
        else ""
    )
    return (
        f"Every page pays {ms(extra_s)} for its checkpoint{measured_parts}. Against a "
        f"{ms(bare_s)} page that is {extra_s / bare_s:.1%}; the goal needs the database "
        f"part under {ms(bare_s * goal)}{_round_trip(bench)}. The cost is per page, not per "
        f"item, so it shrinks as the market slows. What would bring it down: overlap the "
        f"commit with the next page's fetch (fetch page N+1 while page N commits; publishing "
        f"still waits for the commit), so only the part of the commit longer than the "
        f"fetch is felt, and one transaction per page with as few round trips as possible."
    )


def _round_trip(bench: Bench) -> str:
    if bench.update_commit_s is None:
        return ""
    return f" (one bare durable UPDATE commit is {ms(bench.update_commit_s)})"
