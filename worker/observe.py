"""Where the runtime notes what it measures: market requests, waits, page phases, stale
messages. A hook that every room may call (markets and db sit below the metrics room and
must not import it); the metrics room drains it into the fleet's store.

A note costs a dict update under a lock, in memory. A thread of the worker process flushes
the notes to the store every second (worker.metrics.events), so a pool child SIGKILLed
loses at most its last second of notes: never what was flushed, and never anything twice.
Counters of committed work are not notes: they are read from the rows (worker.db.tallies).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

# The names the notes use (worker.metrics.catalogue exports them with the prefix).
MARKET_REQUESTS = "market_requests_total"
MARKET_BUDGET_WAIT = "market_budget_wait_seconds"
PAGE_PHASE = "page_seconds"
STALE_MESSAGES = "stale_messages_dropped_total"
BOT_UPDATES = "bot_updates_total"
BOT_ERRORS = "bot_errors_total"

# Recovery causes as marketscan_recoveries_total{cause} names them (recovery tallies them in
# PostgreSQL, in the reclaim's own transaction; they are listed here for both rooms).
RECOVERY_LEASE_EXPIRED = "lease_expired"
RECOVERY_WORKER_RESTARTED = "worker_restarted"
RECOVERY_BROKER_LOST = "broker_lost_message"
RECOVERY_WORKER_DIED_BEFORE_START = "worker_died_before_start"
RECOVERY_CAUSES = (
    RECOVERY_LEASE_EXPIRED,
    RECOVERY_WORKER_RESTARTED,
    RECOVERY_BROKER_LOST,
    RECOVERY_WORKER_DIED_BEFORE_START,
)

# Durations held between two drains, at most; a page notes three or four.
MAX_PENDING_DURATIONS = 100_000

# A label set, as fixed (name, value) pairs: never a scan id, a user id or free text.
Labels = tuple[tuple[str, str], ...]


@dataclass
class Notes:
    """What was noted since the last drain: counter increments and observed durations."""

    counts: dict[tuple[str, Labels], float] = field(default_factory=dict)
    durations: list[tuple[str, Labels, float]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.counts or self.durations)


_lock = threading.Lock()
_notes = Notes()
_enabled = True


def enable(enabled: bool) -> None:
    """Turn noting on or off for this process (MARKETSCAN_METRICS_ENABLED)."""
    global _enabled
    _enabled = enabled


def count(name: str, labels: Labels = (), amount: float = 1) -> None:
    """Add `amount` to counter `name` with `labels`."""
    if not _enabled:
        return
    key = (name, labels)
    with _lock:
        _notes.counts[key] = _notes.counts.get(key, 0) + amount


def duration(name: str, seconds: float, labels: Labels = ()) -> None:
    """Observe `seconds` on histogram `name` with `labels`."""
    if not _enabled:
        return
    with _lock:
        # A process nobody drains (a CLI command, a bench) keeps a bounded memory.
        if len(_notes.durations) < MAX_PENDING_DURATIONS:
            _notes.durations.append((name, labels, seconds))


def market_request(market: str, endpoint: str, code: int | str) -> None:
    """A request to a market completed with HTTP status `code` (or an error class name)."""
    count(MARKET_REQUESTS, (("market", market), ("endpoint", endpoint), ("code", str(code))))


def budget_wait(seconds: float) -> None:
    """A request waited `seconds` for the fleet's request budget."""
    duration(MARKET_BUDGET_WAIT, seconds)


def page_phase(phase: str, seconds: float) -> None:
    """A page spent `seconds` in `phase` (fetch, judge, commit)."""
    duration(PAGE_PHASE, seconds, (("phase", phase),))


@contextlib.contextmanager
def timed_phase(phase: str) -> Iterator[None]:
    """Note how long the block takes as page phase `phase`, however it ends."""
    started = time.perf_counter()
    try:
        yield
    finally:
        page_phase(phase, time.perf_counter() - started)


def stale_dropped() -> None:
    """A page message found the row moved on and was dropped."""
    count(STALE_MESSAGES)


def bot_update(allowed: bool) -> None:
    """The bot's gate let an update on (`allowed`) or refused a stranger."""
    count(BOT_UPDATES, (("outcome", "allowed" if allowed else "refused"),))


def bot_error(bad_input: bool) -> None:
    """An allowed command ended in an error: its input refused (`bad_input`: the user was
    told why) or a failure (the operator finds it in the bot's log)."""
    count(BOT_ERRORS, (("kind", "bad_input" if bad_input else "failure"),))


def drain() -> Notes:
    """Everything noted so far, handed over once: the next drain starts empty."""
    global _notes
    with _lock:
        notes, _notes = _notes, Notes()
    return notes
