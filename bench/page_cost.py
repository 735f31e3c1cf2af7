"""1. Per-page cost: one chain of 2,000 pages x 100 items, zero market latency, one worker
(prefork, concurrency 1). Measured: first to last page commit (the commit transactions' own
`now()`) over the pages between. Floor, in the same worker and run: one bare Celery hop
(`bench.hop` re-enqueues itself 1,000 times) plus one bare single-row `UPDATE ...; COMMIT`
(psycopg2, 1,000 in a loop). Runs are interleaved (hop, update, chain) x 2 (the time
budget allows no more), medians (= means) taken. The breakdown runs the same page runner in
the bench process with a stopwatch per store call and on psycopg2's execute.
"""

from __future__ import annotations

import time
import uuid

from bench import scans
from bench.breakdown import PageBreakdown, in_process_page
from bench.harness import Bench, connect, say
from bench.report import Row, median, ms, spread
from bench.tasks import HOP_TASK, WARMUP_HOPS, hop_key
from worker.app import app

NAME = "page-cost"
GOAL_RATIO = 1.5


def hop_seconds(bench: Bench, hops: int, timeout_s: float = 300.0) -> float:
    """Seconds per link of a chain of `hops` bare self-re-enqueueing tasks."""
    import redis

    run_id = uuid.uuid4().hex
    client = redis.Redis.from_url(bench.broker_url, decode_responses=True)
    app.send_task(HOP_TASK, args=(run_id, hops, hops))
    deadline = time.monotonic() + timeout_s
    while "end" not in (marks := client.hgetall(hop_key(run_id))):
        if time.monotonic() > deadline:
            raise RuntimeError(f"hop chain {run_id} did not finish in {timeout_s}s")
        time.sleep(0.05)
    client.close()
    return (float(marks["end"]) - float(marks["start"])) / (hops - WARMUP_HOPS)


def update_commit_seconds(database_url: str, commits: int) -> float:
    """Seconds per bare single-row UPDATE + COMMIT, durable (synchronous_commit on)."""
    connection = connect(database_url)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_floor (id int PRIMARY KEY, n bigint)")
        cursor.execute("INSERT INTO bench_floor VALUES (1, 0) ON CONFLICT DO NOTHING")
    connection.autocommit = False
    with connection.cursor() as cursor:
        started = time.perf_counter()
        for _ in range(commits):
            cursor.execute("UPDATE bench_floor SET n = n + 1 WHERE id = 1")
            connection.commit()
        elapsed = time.perf_counter() - started
    connection.close()
    return elapsed / commits


def chain_seconds(database_url: str, pages: int, **market_options: int) -> float:
    """Seconds per page of one scan chain run to completion by the running worker."""
    connection = connect(database_url)
    scan_id = scans.start(database_url, scans.params(pages * 100, **market_options))
    scans.wait_for_status(connection, scan_id, timeout_s=pages * 0.5 + 60)
    per_page = scans.seconds_per_page(scans.page_commit_times(connection, scan_id))
    connection.close()
    return per_page


def run(bench: Bench) -> list[Row]:
    pages, runs = bench.size(2000, 200), 2
    hops, commits = bench.size(1000, 300), bench.size(1000, 500)
    chain: list[float] = []
    hop: list[float] = []
    commit: list[float] = []
    with bench.database(NAME) as url:
        bench.start_worker(bench.worker_env(url), "page@bench", concurrency=1)
        for attempt in range(runs):
            hop.append(hop_seconds(bench, hops))
            commit.append(update_commit_seconds(url, commits))
            chain.append(chain_seconds(url, pages))
            say(
                f"{NAME} run {attempt + 1}/{runs}: chain {ms(chain[-1])}/page, "
                f"hop {ms(hop[-1])}, update commit {ms(commit[-1])}"
            )
        bench.stop_all()
        parts = in_process_page(url, bench.size(300, 100))
    per_page, floor = median(chain), median(hop) + median(commit)
    bench.chain_s_per_page, bench.update_commit_s = per_page, median(commit)
    bench.page_breakdown = parts
    ratio = per_page / floor
    return [
        Row(
            figure=f"1 per-page cost ({pages:,} pages x 100 items, prefork c=1)",
            measured=f"{ms(per_page)}/page",
            floor=f"{ms(floor)} (hop {ms(median(hop))} + UPDATE commit "
            f"{ms(median(commit))}) -> {ratio:.2f}x",
            goal=f"<= {GOAL_RATIO}x floor",
            met=ratio <= GOAL_RATIO,
            note=_note(per_page, floor, median(hop), median(commit), parts),
            detail=f"chain {spread(chain, 1000, ' ms')}; hop {spread(hop, 1000, ' ms')}; "
            f"UPDATE commit {spread(commit, 1000, ' ms')}. {_breakdown(per_page, parts)}",
        )
    ]


def _breakdown(per_page: float, parts: PageBreakdown) -> str:
    rest = parts.storing_s - parts.claim_s - parts.commit_s - parts.commits_s
    return (
        f"In-process page (run_page, no Celery): {ms(parts.total_s)} = the market building "
        f"100 items {ms(parts.fetch_s)} + judging them {ms(parts.judge_s)} + storing "
        f"{ms(parts.storing_s)} (claim {ms(parts.claim_s)}, commit_page {ms(parts.commit_s)}, "
        f"the two COMMITs {ms(parts.commits_s)}, sessions and the runner {ms(rest)}); of the "
        f"storing, {ms(parts.waiting_s)} is waiting on PostgreSQL (statements incl. BEGIN "
        f"{ms(parts.database_s)}, COMMITs {ms(parts.commits_s)}) and {ms(parts.python_s)} is "
        f"Python. The worker chain adds {ms(per_page - parts.total_s)} per page to that: the "
        f"Celery hop."
    )


def _note(per_page: float, floor: float, hop: float, commit: float, parts: PageBreakdown) -> str:
    best = hop + parts.items_s + parts.waiting_s
    return (
        f"A page costs {ms(per_page)}; the {ms(floor)} floor has neither the page's own work "
        f"nor its second transaction. The 100 items alone (the simulated market building them "
        f"{ms(parts.fetch_s)}, judging {ms(parts.judge_s)}) are "
        f"{parts.items_s / floor:.2f}x the floor, so the goal leaves "
        f"{ms(GOAL_RATIO * floor - parts.items_s)} for the hop and both transactions together. "
        f"Measured in-process, storing a page takes {ms(parts.storing_s)}: "
        f"{ms(parts.waiting_s)} waiting on PostgreSQL (two transactions: the claim, then the "
        f"commit with the opportunities; the floor's one bare commit is {ms(commit)}) and "
        f"{ms(parts.python_s)} of Python around it; the worker adds "
        f"{ms(per_page - parts.total_s)} of Celery hop (the bare hop is {ms(hop)}). Against "
        f"hop + items + PostgreSQL waiting ({ms(best)}) the chain is {per_page / best:.2f}x. "
        f"What would close it: one transaction per page instead of two (the commit of page N "
        f"could take page N+1's lease and count its delivery, leaving the next task a read), "
        f"and less Python per statement; the hop is Celery's own per-task cost (receive, "
        f"prefork hand-off, task events, late ack), {ms(hop)} even bare. With a real market's "
        f"20 to 500 ms per page, all of it is small."
    )
