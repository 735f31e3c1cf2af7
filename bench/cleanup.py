"""6. Cleanup under load: 1,000,000 terminal checkpoints last updated 30 days ago are
bulk-inserted (generate_series, then VACUUM ANALYZE as autovacuum would), a zero-latency
scan runs on one worker (prefork, concurrency 1), and after 3 s of it the production
cleanup (checkpoint_store.cleanup_old_checkpoints, 7 days, batches of
MARKETSCAN_CLEANUP_BATCH_SIZE) deletes them from the bench process. Measured: rows/s, and
the running scan's worst page interval during the cleanup against its median before
(page commit times from the database, cleanup start and end from its clock).
"""

from __future__ import annotations

import statistics
import time

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench import dataset, scans
from bench.harness import Bench, connect, say
from bench.report import Row, ms
from worker.db import driver_url
from worker.db.checkpoints import cleanup_old_checkpoints
from worker.settings import get_settings

NAME = "cleanup"
BASELINE_S = 3.0


def run(bench: Bench) -> list[Row]:
    rows = bench.size(1_000_000, 100_000)
    batch_size = get_settings().cleanup_batch_size
    with bench.database(NAME) as url:
        connection = connect(url)
        inserted_at = time.monotonic()
        dataset.insert_checkpoints(connection, rows, users=100_000, age_days_sql="30")
        say(f"{NAME}: {rows:,} old rows inserted in {time.monotonic() - inserted_at:.0f}s")
        bench.start_worker(bench.worker_env(url), "clean@bench")
        scan_id = scans.start(url, scans.params(10_000_000))
        scans.wait_for_page(connection, scan_id, 10)
        baseline_from = scans.server_clock(connection)
        time.sleep(BASELINE_S)
        engine = create_engine(driver_url(url))
        cleanup_from = scans.server_clock(connection)
        started = time.monotonic()
        with Session(engine) as session:
            deleted = cleanup_old_checkpoints(session, days=7, batch_size=batch_size)
        elapsed = time.monotonic() - started
        cleanup_to = scans.server_clock(connection)
        engine.dispose()
        time.sleep(0.5)
        scans.cancel(url, scan_id)
        gaps = scans.page_gaps(scans.page_commit_times(connection, scan_id))
        connection.close()
    before = [gap for at, gap in gaps if baseline_from < at <= cleanup_from]
    during = [gap for at, gap in gaps if cleanup_from < at <= cleanup_to]
    assert deleted == rows, f"cleanup deleted {deleted} of {rows} rows"
    median_before, worst = statistics.median(before), max(during)
    say(
        f"{NAME}: {deleted:,} rows in {elapsed:.1f}s; worst page {ms(worst)} vs "
        f"{ms(median_before)} before"
    )
    p99 = statistics.quantiles(during, n=100)[98] if len(during) >= 100 else worst
    return [
        Row(
            figure=f"6 cleanup of {rows:,} old terminal rows during a scan",
            measured=f"{deleted / elapsed:,.0f} rows/s ({elapsed:.1f} s, batches of {batch_size})",
            floor=f"worst page {ms(worst)} vs median {ms(median_before)} before -> "
            f"{worst / median_before:.1f}x",
            goal="none set (report)",
            met=None,
            detail=f"{len(during)} page intervals during the cleanup: median "
            f"{ms(statistics.median(during))}, p99 {ms(p99)}; {len(before)} before. "
            f"Each batch is its own transaction with SKIP LOCKED, so the scan's row is "
            f"never blocked; the pages slow down only by sharing two cores, the WAL and the "
            f"disk with the deletes.",
        )
    ]
