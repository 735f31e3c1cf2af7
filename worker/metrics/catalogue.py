"""Every metric marketscan exports, in one list: name, kind, labels, help, and where its
value comes from. The collector and the tests of the rules and the dashboard read this
list; docs/monitoring.md's Metrics table documents it.

To add a metric: add a Metric here (its name with the `marketscan_` prefix and its unit),
then give the collector its value (worker.metrics.collector) from the rows (worker.db),
from a note (worker.observe, flushed to worker.metrics.events) or from Redis; the tests
fail until the exposition carries it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from worker import observe

PREFIX = "marketscan_"


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


class Source(StrEnum):
    ROWS = "PostgreSQL rows and tallies, read at scrape"
    NOTES = "workers' notes, flushed to Redis every second"
    BROKER = "the broker's Redis, read at scrape"


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Kind
    help: str
    source: Source
    labels: tuple[str, ...] = ()
    # Upper bounds of a histogram's buckets, in seconds.
    buckets: tuple[float, ...] = ()


_PAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)

METRICS: tuple[Metric, ...] = (
    Metric("marketscan_scans", Kind.GAUGE, "Scans stored, by status.", Source.ROWS, ("status",)),
    Metric("marketscan_pages_committed_total", Kind.COUNTER,
           "Whole pages committed by page chains.", Source.ROWS),
    Metric("marketscan_items_processed_total", Kind.COUNTER,
           "Listings judged and committed by page chains.", Source.ROWS),
    Metric("marketscan_items_skipped_total", Kind.COUNTER,
           "Listings no column could hold, walked past and committed.", Source.ROWS),
    Metric("marketscan_opportunities_found_total", Kind.COUNTER,
           "Opportunities committed.", Source.ROWS),
    Metric("marketscan_recoveries_total", Kind.COUNTER,
           "Scans recovery republished, by cause.", Source.ROWS, ("cause",)),
    Metric("marketscan_watch_passes_total", Kind.COUNTER,
           "Watch slots by outcome: a pass started, skipped (overlap) or missed (catch-up).",
           Source.ROWS, ("outcome",)),
    Metric("marketscan_stale_messages_dropped_total", Kind.COUNTER,
           "Page messages dropped because the row had moved on.", Source.NOTES),
    Metric("marketscan_page_seconds", Kind.HISTOGRAM,
           "Time a page spends fetching (retries and waits included), judging, committing.",
           Source.NOTES, ("phase",), _PAGE_BUCKETS),
    Metric("marketscan_market_budget_wait_seconds", Kind.HISTOGRAM,
           "Time a market request waited for the fleet's request budget.",
           Source.NOTES, (), _WAIT_BUCKETS),
    Metric("marketscan_market_requests_total", Kind.COUNTER,
           "Market requests completed, by market, endpoint and HTTP status (or error class).",
           Source.NOTES, ("market", "endpoint", "code")),
    Metric("marketscan_bot_updates_total", Kind.COUNTER,
           "Telegram updates the bot's allow-list let on, or refused, by outcome.",
           Source.NOTES, ("outcome",)),
    Metric("marketscan_bot_errors_total", Kind.COUNTER,
           "Allowed bot commands that ended in an error: bad_input (the user was told why) "
           "or failure (see the bot's log).", Source.NOTES, ("kind",)),
    Metric("marketscan_queue_depth", Kind.GAUGE,
           "Page messages waiting in each queue.", Source.BROKER, ("queue",)),
    Metric("marketscan_oldest_queued_page_age_seconds", Kind.GAUGE,
           "How long the oldest queued page of an in-progress scan has waited (0: none).",
           Source.ROWS),
    Metric("marketscan_stalest_scan_commit_age_seconds", Kind.GAUGE,
           "Time since the last checkpoint of the in-progress scan that committed longest ago.",
           Source.ROWS),
    Metric("marketscan_fresh_watch_lag_seconds", Kind.GAUGE,
           "How far the most lagging running fresh watch is behind the market: time since "
           "its last poll read the newest listings (0: none runs).", Source.ROWS),
    Metric("marketscan_fresh_polls", Kind.GAUGE,
           "Polls committed so far by the running and paused fresh watches' scans.",
           Source.ROWS),
    Metric("marketscan_fresh_gaps", Kind.GAUGE,
           "Polls of the running and paused fresh watches that found their watermark deeper "
           "than MARKETSCAN_FRESH_MAX_GAP_PAGES and resumed from the newest listing.",
           Source.ROWS),
    Metric("marketscan_fresh_gap_seconds", Kind.GAUGE,
           "Seconds of listings those gaps walked past unjudged.", Source.ROWS),
    Metric("marketscan_cleanup_rows_deleted_total", Kind.COUNTER,
           "Terminal scans deleted by retention.", Source.ROWS),
    Metric("marketscan_cleanup_last_success_timestamp_seconds", Kind.GAUGE,
           "When a cleanup last ran to its end (Unix time; 0: never).", Source.ROWS),
    Metric("marketscan_market_circuit_open", Kind.GAUGE,
           "1 while the fleet's circuit breaker of the market is open (its scans wait).",
           Source.BROKER, ("market",)),
    Metric("marketscan_processes", Kind.GAUGE,
           "Worker and beat processes seen alive in the last presence window, by role.",
           Source.BROKER, ("role",)),
)  # fmt: skip

BY_NAME = {metric.name: metric for metric in METRICS}


def exported_series_names() -> frozenset[str]:
    """Every series name the exposition carries (a histogram's as _bucket, _sum, _count)."""
    names: set[str] = set()
    for metric in METRICS:
        if metric.kind is Kind.HISTOGRAM:
            names.update(f"{metric.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(metric.name)
    return frozenset(names)


def of_note(note_name: str) -> Metric:
    """The metric a worker.observe note feeds."""
    return BY_NAME[PREFIX + note_name]


# Every note worker.observe can make has its metric here (checked at import).
for _note in (observe.MARKET_REQUESTS, observe.MARKET_BUDGET_WAIT, observe.PAGE_PHASE,
              observe.STALE_MESSAGES, observe.BOT_UPDATES, observe.BOT_ERRORS):  # fmt: skip
    assert of_note(_note).source is Source.NOTES, _note
