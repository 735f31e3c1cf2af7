"""9. Memory: resident set size of the process that runs the pages (the prefork pool child of
a concurrency-1 worker, found with psutil) along one scan of 500,000 items in pages of 100
(5,000 pages), zero latency. Sampled when the row passes page 100, every tenth of the scan,
and at the end; growth is from page 100 to the last page.
"""

from __future__ import annotations

import time

import psutil

from bench.kit import scans
from bench.kit.database import connect
from bench.kit.harness import Bench, say
from bench.kit.report import Row

NAME = "memory"
FIRST_PAGE = 100
GOAL_GROWTH = 0.10
MIB = 2**20


def run(bench: Bench) -> list[Row]:
    pages = bench.size(5_000, 2_000)
    marks = [FIRST_PAGE] + [pages * k // 10 for k in range(2, 10)] + [pages]
    samples: list[tuple[int, int]] = []
    with bench.database(NAME) as url:
        worker = bench.start_worker(bench.worker_env(url), "mem@bench", concurrency=1)
        (child,) = psutil.Process(worker.pid).children()
        connection = connect(url)
        scan_id = scans.start(url, scans.params(pages * 100))
        deadline = time.monotonic() + pages * 0.5 + 60
        while marks:
            state, _, page_seq = scans.status(connection, scan_id)
            if page_seq >= marks[0] or state == "completed":
                samples.append((page_seq, child.memory_info().rss))
                marks.pop(0)
                continue
            if time.monotonic() > deadline:
                raise RuntimeError(f"scan stuck at page {page_seq}")
            time.sleep(0.1)
        connection.close()
    (first_page, first), (last_page, last) = samples[0], samples[-1]
    growth = (last - first) / first
    say(
        f"{NAME}: {first / MIB:.1f} MiB at page {first_page}, {last / MIB:.1f} MiB at "
        f"page {last_page}"
    )
    series = ", ".join(f"p{page}: {rss / MIB:.1f}" for page, rss in samples)
    return [
        Row(
            figure=f"9 worker RSS along one scan ({pages * 100:,} items, {pages:,} pages)",
            measured=f"{first / MIB:.1f} MiB at page {first_page} -> {last / MIB:.1f} MiB at "
            f"page {last_page} ({growth:+.1%})",
            floor=f"page {first_page} -> {last / first:.3f}x",
            goal=f"flat (< {GOAL_GROWTH:.0%} growth)",
            met=growth < GOAL_GROWTH,
            note="The pool child keeps something per page; find it with tracemalloc "
            "snapshots at two page numbers in the child.",
            detail=f"RSS of the pool child in MiB by page: {series}.",
        )
    ]
