"""The store of the workers' notes (worker.observe): counters and histogram buckets that
every process adds to and the exporter reads, so they survive the process that noted them.

A plug-in family: EventStore is the protocol, RedisEventStore keeps them in the broker's
Redis (one hash, HINCRBY in one MULTI per flush), MemoryEventStore is the stub for tests;
tests/contract/test_event_store.py runs over both.

Each process flushes its notes every second from a thread of its own (keep_flushing), and
once more when it exits warm. A flush is written once or not at all: a failed one is
logged and dropped, never retried (redis cannot say whether a MULTI whose reply was lost
ran), so a counter may miss a task's notes after a broker outage but never counts them
twice, and never goes backwards.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import redis

from worker import observe, redis_keys
from worker.metrics import catalogue

log = logging.getLogger(__name__)

_SEP = "|"
INF = "+Inf"


class EventStore(Protocol):
    """Sums of fields that only grow: `add` adds, `fields` reads them all."""

    def add(self, amounts: Mapping[str, float]) -> None: ...

    def fields(self) -> dict[str, float]: ...


class MemoryEventStore:
    """EventStore in this process's memory (tests, a single-process bench)."""

    def __init__(self) -> None:
        self._fields: dict[str, float] = {}

    def add(self, amounts: Mapping[str, float]) -> None:
        for field, amount in amounts.items():
            self._fields[field] = self._fields.get(field, 0) + amount

    def fields(self) -> dict[str, float]:
        return dict(self._fields)


class RedisEventStore:
    """EventStore in one Redis hash, shared by every process and host of the fleet."""

    def __init__(self, client: redis.Redis, key: str = redis_keys.METRIC_NOTES_KEY) -> None:
        self._client = client
        self._key = key

    def add(self, amounts: Mapping[str, float]) -> None:
        with self._client.pipeline(transaction=True) as pipe:
            for field, amount in amounts.items():
                if float(amount).is_integer():
                    pipe.hincrby(self._key, field, int(amount))
                else:
                    pipe.hincrbyfloat(self._key, field, amount)
            pipe.execute()

    def fields(self) -> dict[str, float]:
        raw = self._client.hgetall(self._key)
        return {_text(key): float(value) for key, value in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _labels_text(labels: observe.Labels) -> str:
    return ",".join(f"{name}={value}" for name, value in labels)


def _labels_of(text: str) -> observe.Labels:
    if not text:
        return ()
    return tuple((pair.partition("=")[0], pair.partition("=")[2]) for pair in text.split(","))


def fields_of(notes: observe.Notes) -> dict[str, float]:
    """Notes as store fields: counters as-is, durations bucketed (not cumulative) and summed."""
    amounts: dict[str, float] = {}

    def add(field: str, amount: float) -> None:
        amounts[field] = amounts.get(field, 0) + amount

    for (name, labels), amount in notes.counts.items():
        add(_SEP.join(("c", name, _labels_text(labels))), amount)
    for name, labels, seconds in notes.durations:
        bounds = catalogue.of_note(name).buckets
        index = bisect.bisect_left(bounds, seconds)
        bound = INF if index == len(bounds) else repr(float(bounds[index]))
        add(_SEP.join(("b", name, _labels_text(labels), bound)), 1)
        add(_SEP.join(("s", name, _labels_text(labels))), seconds)
    return amounts


def flush(store: EventStore) -> None:
    """Move this process's notes to `store`; on a store error they are dropped (see above)."""
    notes = observe.drain()
    if not notes:
        return
    try:
        store.add(fields_of(notes))
    except redis.RedisError as exc:
        log.warning("metrics notes of this task were lost: %s", exc)


# How often a process moves its notes to the store. Not after every task: under CPU
# contention one more Redis round trip per page costs milliseconds (bench/metrics_cost.py).
FLUSH_INTERVAL_SECONDS = 1.0

_flusher_pid: int | None = None
_flusher_lock = threading.Lock()


def keep_flushing(store: EventStore, interval_seconds: float = FLUSH_INTERVAL_SECONDS) -> None:
    """Make sure this process has a daemon thread flushing its notes every interval.

    Cheap to call on every task: a pid check. The thread is started in the process that
    runs tasks (a forked pool child has no thread of its parent's), so a child killed
    loses at most one interval of notes, never what it flushed.
    """
    global _flusher_pid
    if _flusher_pid == os.getpid():
        return
    with _flusher_lock:
        if _flusher_pid == os.getpid():
            return
        _flusher_pid = os.getpid()
        threading.Thread(
            target=_flush_every, args=(store, interval_seconds), name="metrics-flush", daemon=True
        ).start()


def _flush_every(store: EventStore, interval_seconds: float) -> None:
    while True:
        threading.Event().wait(interval_seconds)
        flush(store)


@dataclass(frozen=True)
class Histogram:
    """A histogram as Prometheus wants it: cumulative buckets, sum and count."""

    buckets: list[tuple[str, float]]
    sum: float

    @property
    def count(self) -> float:
        return self.buckets[-1][1]


@dataclass
class Snapshot:
    """The store's fields, decoded by metric name and labels."""

    counters: dict[tuple[str, observe.Labels], float]
    histograms: dict[tuple[str, observe.Labels], Histogram]


def snapshot(fields: Mapping[str, float]) -> Snapshot:
    """Decode store fields; unknown or malformed fields are ignored (an older release's)."""
    counters: dict[tuple[str, observe.Labels], float] = {}
    bucket_counts: dict[tuple[str, observe.Labels], dict[str, float]] = {}
    sums: dict[tuple[str, observe.Labels], float] = {}
    for field, value in fields.items():
        kind, _, rest = field.partition(_SEP)
        name, _, rest = rest.partition(_SEP)
        if catalogue.PREFIX + name not in catalogue.BY_NAME:
            continue
        if kind == "c":
            counters[(name, _labels_of(rest))] = value
        elif kind == "s":
            sums[(name, _labels_of(rest))] = value
        elif kind == "b":
            labels, _, bound = rest.rpartition(_SEP)
            bucket_counts.setdefault((name, _labels_of(labels)), {})[bound] = value
    histograms = {
        key: Histogram(_cumulative(catalogue.of_note(key[0]).buckets, counts), sums.get(key, 0))
        for key, counts in bucket_counts.items()
    }
    return Snapshot(counters, histograms)


def _cumulative(bounds: tuple[float, ...], counts: Mapping[str, float]) -> list[tuple[str, float]]:
    running = 0.0
    cumulative = []
    for bound in (*(repr(float(b)) for b in bounds), INF):
        running += counts.get(bound, 0)
        cumulative.append((bound, running))
    return cumulative
