"""3b. Fairness of time slices: 16 scans of 20 ms pages share one worker with two pool
processes (prefork, concurrency 2). For each scan, the longest wait between two of its
page commits; the worst over all scans, with slices (the defaults) against one page per
task (`MARKETSCAN_SLICE_PAGES=1`), in the same run. A slice holds a pool slot longer, so a
scan waits for other scans' slices; while others wait a slice is bounded by
`MARKETSCAN_SLICE_BACKLOG_MS` as well as by its pages. The goal: no scan waits longer than
with one page per task, give or take two slices (a slice: what a task walks, at most
`MARKETSCAN_SLICE_PAGES` pages or its backlog bound plus the page it had started).

Commit times come from a trigger this figure installs in its own database: the wall
clock of every change of a row's page position.
"""

from __future__ import annotations

import itertools
import uuid

from bench import scans
from bench.harness import Bench, Connection, connect, say
from bench.report import Row, median, spread
from worker.settings import get_settings

NAME = "fairness"
SCANS = 16
MARKET_LATENCY_MS = 20

_INSTALL = """
CREATE TABLE bench_page_commits (scan_id uuid NOT NULL, at float8 NOT NULL);
CREATE FUNCTION bench_log_page_commit() RETURNS trigger AS $$
BEGIN
    IF NEW.page_seq <> OLD.page_seq OR NEW.page_offset <> OLD.page_offset THEN
        INSERT INTO bench_page_commits VALUES (OLD.scan_id, extract(epoch FROM clock_timestamp()));
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER bench_page_commits AFTER UPDATE ON scan_checkpoints
    FOR EACH ROW EXECUTE FUNCTION bench_log_page_commit();
"""


def worst_wait_s(database_url: str, connection: Connection, pages: int) -> float:
    """The longest wait between two page commits of any one of SCANS concurrent scans."""
    params = scans.params(pages * scans.PAGE_SIZE, latency_ms=MARKET_LATENCY_MS)
    scan_ids: list[uuid.UUID] = [scans.start(database_url, params) for _ in range(SCANS)]
    for scan_id in scan_ids:
        scans.wait_for_status(connection, scan_id, timeout_s=SCANS * pages * 0.5 + 60)
    worst = 0.0
    with connection.cursor() as cursor:
        for scan_id in scan_ids:
            cursor.execute(
                "SELECT at FROM bench_page_commits WHERE scan_id = %s ORDER BY at",
                (str(scan_id),),
            )
            times = [float(at) for (at,) in cursor.fetchall()]
            worst = max([worst, *(b - a for a, b in itertools.pairwise(times))])
    return worst


def run(bench: Bench) -> list[Row]:
    # More pages than one slice holds, so every scan goes back through the queue.
    pages, runs = bench.size(60, 30), bench.size(2, 1)
    settings = get_settings()
    # The slice a task walks: its page bound at this market's pace, or its time bound under
    # a backlog (plus the page it had started), whichever comes first.
    backlog_s = (min(settings.slice_ms, settings.slice_backlog_ms) + MARKET_LATENCY_MS) / 1000
    slice_s = min(backlog_s, settings.slice_pages * MARKET_LATENCY_MS / 1000)
    sliced: list[float] = []
    single: list[float] = []
    with bench.database(NAME) as url:
        connection = connect(url)
        with connection.cursor() as cursor:
            cursor.execute(_INSTALL)
        for attempt in range(runs):
            for waits, overrides in ((single, {"MARKETSCAN_SLICE_PAGES": "1"}), (sliced, {})):
                worker = bench.start_worker(
                    bench.worker_env(url, **overrides), f"fair{attempt}@bench", concurrency=2
                )
                waits.append(worst_wait_s(url, connection, pages))
                worker.stop()
            say(
                f"{NAME} run {attempt + 1}/{runs}: worst wait between commits "
                f"{single[-1] * 1000:.0f} ms one page per task, "
                f"{sliced[-1] * 1000:.0f} ms with slices"
            )
        connection.close()
    bound = median(single) + 2 * slice_s
    return [
        Row(
            figure=f"3b fairness ({SCANS} scans x {pages} pages of {MARKET_LATENCY_MS} ms, "
            f"prefork c=2)",
            measured=f"worst wait between a scan's commits {median(sliced) * 1000:.0f} ms "
            f"with slices (of about {slice_s * 1000:.0f} ms alone)",
            floor=f"one page per task {median(single) * 1000:.0f} ms",
            goal=f"<= one page per task + 2 slices = {bound * 1000:.0f} ms",
            met=median(sliced) <= bound,
            note="Under a backlog a slice is bounded by MARKETSCAN_SLICE_BACKLOG_MS; a wait "
            "longer than the goal means a slice outran its bound.",
            detail=f"with slices {spread(sliced, 1000, ' ms')}; one page per task "
            f"{spread(single, 1000, ' ms')}.",
        )
    ]
