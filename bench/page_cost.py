"""1. Per-page cost: one chain of 1,000 pages x 100 items, zero market latency, one worker
(prefork, concurrency 1), run twice per round: one page per task (the worker started with
MARKETSCAN_SLICE_PAGES=1) and with time slices (the default MARKETSCAN_SLICE_MS and
MARKETSCAN_SLICE_PAGES). Measured: first to last page commit (the commit transactions' own
`now()`) over the pages between. Two floors, in the same run: our settings (one bare Celery
hop, `bench.hop` re-enqueueing itself 500 times in marketscan's own worker) and Celery's
defaults (the same hop in a bare Celery app with its defaults, bench.kit.hop_apps:defaults, its
own worker and queue), each plus one bare single-row `UPDATE ...; COMMIT` (psycopg2, 1,000
in a loop). Rounds interleave (hops, update, chain) for each mode x 2; medians. The
breakdown runs the same page runner in the bench process with a stopwatch per store call
and on psycopg2's execute.
"""

from __future__ import annotations

import time

from bench.kit.breakdown import in_process_page
from bench.kit.database import connect
from bench.kit.harness import Bench, say, wait_ready
from bench.kit.hop import hop_seconds
from bench.kit.hop_apps import APPS
from bench.kit.report import Row, median
from bench.kit.scans import chain_seconds
from bench.page_cost_notes import ONE_PAGE, SLICES, Measured, rows
from worker.app import app

NAME = "page-cost"
# (mode, the worker's environment on top of the bench's): the slice settings' defaults
# come from worker.settings, so the second mode names none.
MODES: tuple[tuple[str, dict[str, str]], ...] = (
    (ONE_PAGE, {"MARKETSCAN_SLICE_PAGES": "1"}),
    (SLICES, {}),
)
DEFAULTS = "bench.kit.hop_apps:defaults"


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


def run(bench: Bench) -> list[Row]:
    pages, runs = bench.size(1000, 200), 2
    hops, commits = bench.size(500, 300), bench.size(1000, 500)
    measured = Measured()
    with bench.database(NAME) as url:
        # Celery's defaults: a bare app's worker on a queue of its own, up for the whole figure.
        wait_ready(bench.start_worker(bench.worker_env(url), "hop-defaults@bench", app=DEFAULTS))
        for attempt in range(runs):
            for mode, overrides in MODES:
                _one_round(bench, url, mode, overrides, measured, (pages, hops, commits))
                say(f"{NAME} run {attempt + 1}/{runs}, {mode}: {measured.last(mode)}")
        bench.stop_all()
        parts = in_process_page(url, bench.size(300, 100))
    bench.chain_s_per_page = median(measured.chain[SLICES])
    bench.update_commit_s = median(measured.commit)
    bench.page_breakdown = parts
    return rows(measured, parts, pages)


def _one_round(
    bench: Bench,
    url: str,
    mode: str,
    overrides: dict[str, str],
    measured: Measured,
    sizes: tuple[int, int, int],
) -> None:
    """Both hops, the bare commit and one chain, in a worker started for this mode."""
    pages, hops, commits = sizes
    hostname = f"page-{mode.replace(' ', '-')}@bench"
    worker = bench.start_worker(bench.worker_env(url, **overrides), hostname, concurrency=1)
    measured.hop_ours.append(hop_seconds(app, bench.broker_url, hops))
    measured.hop_defaults.append(hop_seconds(APPS["defaults"], bench.broker_url, hops))
    measured.commit.append(update_commit_seconds(url, commits))
    measured.chain.setdefault(mode, []).append(chain_seconds(url, pages))
    bench.stop(worker)
