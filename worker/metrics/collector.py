"""The collector `marketscan metrics` serves: every metric of the catalogue, read at
scrape time from PostgreSQL (the tallies, and the running scans' waits), the notes store
and the broker; one reading serves every scrape that arrives while it runs.

A scrape that cannot reach PostgreSQL or Redis fails whole (HTTP 500), so Prometheus
marks the target down instead of recording zeros that would look like counter resets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager

import redis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from worker import observe
from worker.db import Session, tallies
from worker.db.tallies import FleetRows
from worker.domain.page_message import QUEUES
from worker.markets.fleet import breaker
from worker.metrics import catalogue, events, presence
from worker.metrics.catalogue import Kind
from worker.metrics.single_flight import SingleFlight

Sessions = Callable[[], AbstractContextManager[Session]]


class FleetCollector(Collector):
    """Reads the fleet's state at each scrape, once for all the scrapes that arrive while
    it reads."""

    def __init__(
        self,
        sessions: Sessions,
        broker: redis.Redis,
        store: events.EventStore,
        breakers: Mapping[str, str] | None = None,
    ) -> None:
        """`breakers`: each market's label and the key its fleet circuit breaker is kept by
        (its base URL, which never becomes a label)."""
        self._sessions = sessions
        self._broker = broker
        self._store = store
        self._breakers = dict(breakers or {})
        self._reading = SingleFlight(self._read)

    @property
    def waiting(self) -> int:
        """Scrapes waiting for the reading under way, to be served its result."""
        return self._reading.waiting

    def collect(self) -> Iterator[Metric]:
        # Scrapes that arrive together share one reading (worker.metrics.single_flight).
        return iter(self._reading())

    def _read(self) -> list[Metric]:
        with self._sessions() as session:
            rows = tallies.fleet_rows(session)
            tallied = tallies.read(session)
        return [
            *_from_rows(rows, tallied),
            *_from_notes(events.snapshot(self._store.fields())),
            *self._from_broker(),
        ]

    def _from_broker(self) -> Iterator[Metric]:
        with self._broker.pipeline(transaction=False) as pipe:
            for queue in QUEUES:
                pipe.llen(queue)
            depths = pipe.execute()
        by_queue: dict[tuple[str, ...], float] = {
            (queue,): depth for queue, depth in zip(QUEUES, depths, strict=True)
        }
        yield _gauge("marketscan_queue_depth", by_queue)
        alive = presence.alive_by_role(self._broker)
        yield _gauge("marketscan_processes", {(role,): n for role, n in alive.items()})
        circuit_open: dict[tuple[str, ...], float] = {
            (market,): float(breaker.is_open(self._broker, key))
            for market, key in self._breakers.items()
        }
        yield _gauge("marketscan_market_circuit_open", circuit_open)


def _family(name: str) -> catalogue.Metric:
    return catalogue.BY_NAME[name]


def _gauge(name: str, values: dict[tuple[str, ...], float]) -> GaugeMetricFamily:
    metric = _family(name)
    family = GaugeMetricFamily(name, metric.help, labels=metric.labels)
    for labels, value in values.items():
        family.add_metric(list(labels), value)
    return family


def _counter(name: str, values: dict[tuple[str, ...], float]) -> CounterMetricFamily:
    metric = _family(name)
    family = CounterMetricFamily(name, metric.help, labels=metric.labels)
    for labels, value in values.items():
        family.add_metric(list(labels), value)
    return family


def _from_rows(rows: FleetRows, tallied: dict[tuple[str, str], int]) -> Iterator[Metric]:
    def retired(name: str) -> int:
        return tallied.get((name, ""), 0)

    yield _gauge("marketscan_scans", {(status,): n for status, n in rows.scans_by_status.items()})
    yield _counter(
        "marketscan_pages_committed_total", {(): rows.pages + retired(tallies.RETIRED_PAGES)}
    )
    yield _counter(
        "marketscan_items_processed_total", {(): rows.items + retired(tallies.RETIRED_ITEMS)}
    )
    yield _counter(
        "marketscan_items_skipped_total", {(): rows.skipped + retired(tallies.RETIRED_SKIPPED)}
    )
    yield _counter(
        "marketscan_opportunities_found_total",
        {(): rows.opportunities + retired(tallies.RETIRED_OPPORTUNITIES)},
    )
    # Every cause at zero before its first recovery, so rate() sees the first one.
    recoveries: dict[tuple[str, ...], float] = {(label,): 0.0 for label in observe.RECOVERY_CAUSES}
    for (name, label), value in tallied.items():
        if name == tallies.RECOVERIES:
            recoveries[(label,)] = value
    yield _counter("marketscan_recoveries_total", recoveries)
    passes: dict[tuple[str, ...], float] = {
        (outcome,): tallied.get((tallies.WATCH_PASSES, outcome), 0)
        for outcome in tallies.WATCH_OUTCOMES
    }
    yield _counter("marketscan_watch_passes_total", passes)
    yield _gauge("marketscan_oldest_queued_page_age_seconds", {(): rows.oldest_queued_age_seconds})
    yield _gauge(
        "marketscan_stalest_scan_commit_age_seconds", {(): rows.stalest_commit_age_seconds}
    )
    yield _gauge("marketscan_fresh_watch_lag_seconds", {(): rows.fresh.lag_seconds})
    yield _gauge("marketscan_fresh_polls", {(): rows.fresh.polls})
    yield _gauge("marketscan_fresh_gaps", {(): rows.fresh.gaps})
    yield _gauge("marketscan_fresh_gap_seconds", {(): rows.fresh.gap_seconds})
    yield _counter(
        "marketscan_cleanup_rows_deleted_total", {(): retired(tallies.CLEANUP_ROWS_DELETED)}
    )
    yield _gauge(
        "marketscan_cleanup_last_success_timestamp_seconds",
        {(): retired(tallies.CLEANUP_LAST_SUCCESS)},
    )


def _from_notes(snapshot: events.Snapshot) -> Iterator[Metric]:
    for metric in catalogue.METRICS:
        if metric.source is not catalogue.Source.NOTES:
            continue
        note = metric.name.removeprefix(catalogue.PREFIX)
        if metric.kind is Kind.COUNTER:
            values = {
                tuple(value for _, value in labels): amount
                for (name, labels), amount in snapshot.counters.items()
                if name == note
            }
            if not metric.labels:
                values.setdefault((), 0)
            yield _counter(metric.name, values)
        elif metric.kind is Kind.HISTOGRAM:
            family = HistogramMetricFamily(metric.name, metric.help, labels=metric.labels)
            for (name, labels), histogram in snapshot.histograms.items():
                if name == note:
                    family.add_metric(
                        [value for _, value in labels], histogram.buckets, histogram.sum
                    )
            yield family
