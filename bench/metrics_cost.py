"""1m. What metrics cost a page: figure 1's chain (1,000 pages x 100 items, zero market
latency, prefork concurrency 1, one page per task: the most notes per second) run in pairs,
once with MARKETSCAN_METRICS_ENABLED true and once false, in a worker started for each run;
the order inside a pair alternates. Measured: first to last page commit over the pages
between, as in figure 1, and the CPU time of the worker's processes (main and pool child)
per page, which other load on the machine disturbs less; the cost is the median of the
pairs' differences. The counters of committed work are kept by the database's row tallies
whether metrics are on or off (figure 15 prices their triggers), so what this measures is
the notes: a few dict updates per page, and one Redis MULTI a second from a thread of the
pool child. The second row times
exactly that in the bench process: a page's notes, and one flush, per page (the worst case:
a flush per page instead of per second).
"""

from __future__ import annotations

import time

import psutil

from bench.kit.harness import Bench, say
from bench.kit.report import Row, median, ms, spread
from bench.kit.scans import chain_seconds
from worker import broker_redis, observe
from worker.metrics import events
from worker.settings import DEFAULT_SENTINEL_MASTER

NAME = "metrics-cost"
GOAL_SECONDS = 0.0002


def run(bench: Bench) -> list[Row]:
    pages, pairs = bench.size(1000, 150), bench.size(4, 3)
    wall: dict[str, list[float]] = {"true": [], "false": []}
    cpu: dict[str, list[float]] = {"true": [], "false": []}
    with bench.database(NAME) as url:
        for pair in range(pairs):
            order = ("true", "false") if pair % 2 == 0 else ("false", "true")
            for enabled in order:
                env = bench.worker_env(
                    url, MARKETSCAN_METRICS_ENABLED=enabled, MARKETSCAN_SLICE_PAGES="1"
                )
                worker = bench.start_worker(env, f"metrics-{enabled}@bench", concurrency=1)
                processes = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children()]
                before = sum(_cpu_seconds(process) for process in processes)
                wall[enabled].append(chain_seconds(url, pages))
                cpu[enabled].append(
                    (sum(_cpu_seconds(process) for process in processes) - before) / pages
                )
                bench.stop(worker)
            say(f"{NAME} pair {pair + 1}/{pairs}: on {ms(wall['true'][-1])}, "
                f"off {ms(wall['false'][-1])}/page")  # fmt: skip
    wall_cost, cpu_cost = _paired(wall), _paired(cpu)
    notes_s, flush_s = _notes_and_flush_seconds(bench.broker_url, bench.size(20000, 5000))
    # The flush runs once a second, off the page's thread: spread over a second of pages.
    amortized_s = notes_s + flush_s * median(wall["true"])
    size = f"{pages:,} pages x 100 items, one page per task"
    return [
        Row(
            figure=f"1m metrics cost per page, paired figure 1 runs ({size})",
            measured=f"{wall_cost * 1000:+.3f} ms/page wall, {cpu_cost * 1000:+.3f} ms CPU",
            floor=f"off {ms(median(wall['false']))}/page, on {ms(median(wall['true']))}/page",
            goal=f"<= +{GOAL_SECONDS * 1000:.1f} ms/page",
            met=wall_cost <= GOAL_SECONDS,
            note=""
            if wall_cost <= GOAL_SECONDS
            else (
                "a difference inside the runs' spreads (below) is the machine's noise, not "
                "the notes: the second row times them alone"
            ),
            detail=f"wall on {spread(wall['true'], 1000, ' ms')}, off "
            f"{spread(wall['false'], 1000, ' ms')}; worker CPU per page on "
            f"{spread(cpu['true'], 1000, ' ms')}, off {spread(cpu['false'], 1000, ' ms')}",
        ),
        Row(
            figure="1m a page's notes, and its share of the flush a second, in-process",
            measured=f"{amortized_s * 1000:.4f} ms/page",
            floor=f"notes {notes_s * 1e6:.1f} us/page; one flush {ms(flush_s)}",
            goal=f"<= +{GOAL_SECONDS * 1000:.1f} ms/page",
            met=amortized_s <= GOAL_SECONDS,
        ),
    ]


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _paired(values: dict[str, list[float]]) -> float:
    return median([on - off for on, off in zip(values["true"], values["false"], strict=True)])


def _notes_and_flush_seconds(broker_url: str, pages: int) -> tuple[float, float]:
    """What a page notes (a request, three phases), per page; and one flush of them."""
    store = events.RedisEventStore(broker_redis.new_client(broker_url, DEFAULT_SENTINEL_MASTER))
    observe.drain()
    started = time.perf_counter()
    for _ in range(pages):
        _note_a_page()
    notes_s = (time.perf_counter() - started) / pages
    observe.drain()
    flushes = []
    for _ in range(50):
        for _ in range(30):  # about a second of pages
            _note_a_page()
        started = time.perf_counter()
        events.flush(store)
        flushes.append(time.perf_counter() - started)
    return notes_s, median(flushes)


def _note_a_page() -> None:
    observe.market_request("simulated", "page", 200)
    for phase in ("fetch", "judge", "commit"):
        observe.page_phase(phase, 0.003)
