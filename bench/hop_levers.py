"""1l. The most issue 32's two levers could save a page task, timed in the bench process
against the embedded Redis and PostgreSQL. (1) The broker ledger as a page task pays it,
through worker.chain.broker_ledger's own functions: `publishing` and `sent` around the
publish of its message, `taken` as a worker receives it; folding them into the transport's
own calls (the LPUSH of the publish, kombu's QoS.append on receipt) is the first lever.
(2) The claim as run_page makes it: a session of the relaxed engine (autocommit, no WAL
flush waited for), worker.db.pages.claim on a seeded scan's row, the session's commit; the
same delivery claims the row again each time, as the fence lets it. A running mark kept in
Redis beside the ledger is the second lever; what it would leave, were the row still read,
is (3) a fenced read of the row through the same sessions (worker.db.pages.current_status).
(4) The floors: one Redis PING on the ledger's client, and one bare single-row UPDATE on a
raw connection of the same relaxed engine. Every iteration runs every step, in an order
shifted by one each iteration, so load from other processes lands on all of them alike;
each run's cost is the median of its iterations, the figure the median of the runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import redis
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from bench.kit.database import connect, scalar
from bench.kit.harness import Bench, say
from bench.kit.report import Row, median, spread
from bench.kit.scans import params
from worker.chain import broker_ledger
from worker.chain import lifecycle as scans
from worker.db import driver_url, relaxed_engine, relaxed_sessions
from worker.db import pages as page_store
from worker.domain.page_message import PageMessage
from worker.settings import Settings, get_settings

NAME = "hop-levers"
HOSTNAME = "hop-levers@bench"
# One delivery, claimed again and again: the claim's own fence lets the delivery that holds
# the row take it again, so every iteration is a claim that succeeds, as a fresh one does.
TASK_ID = str(uuid.uuid4())
STEPS = ("ledger", "claim", "read", "ping", "update")


@dataclasses.dataclass
class Timings:
    """Seconds per call of each step: every run's median, and every run's mean."""

    medians: dict[str, list[float]] = dataclasses.field(
        default_factory=lambda: {step: [] for step in STEPS}
    )
    means: dict[str, list[float]] = dataclasses.field(
        default_factory=lambda: {step: [] for step in STEPS}
    )

    def cost(self, step: str) -> float:
        return median(self.medians[step])


def run(bench: Bench) -> list[Row]:
    iterations, runs = bench.size(1500, 500), bench.size(5, 3)
    with bench.database(NAME) as url:
        settings = dataclasses.replace(get_settings(), database_url=url)
        message = _seeded_page(url, settings)
        engine = relaxed_engine(url, settings)
        try:
            calls = _ledger_calls(message)
            warm_up = bench.size(300, 100)
            with _steps(engine, settings, message) as steps:
                timings = _timed(steps, iterations, runs, warm_up)
        finally:
            engine.dispose()
        _check_committed(url, warm_up + iterations * runs)
    return [_row(timings, calls, iterations, runs)]


def _timed(
    steps: dict[str, Callable[[], object]], iterations: int, runs: int, warm_up: int
) -> Timings:
    """Every run's timings of `steps`, after `warm_up` iterations left untimed."""
    _interleaved(steps, warm_up)  # connections opened, the chain's day remembered
    timings = Timings()
    for number in range(runs):
        for step, seconds in _interleaved(steps, iterations).items():
            timings.medians[step].append(statistics.median(seconds))
            timings.means[step].append(statistics.fmean(seconds))
        say(f"{NAME} run {number + 1}/{runs}: " + ", ".join(
            f"{step} {timings.medians[step][-1] * 1000:.3f} ms" for step in STEPS
        ))  # fmt: skip
    return timings


def _seeded_page(database_url: str, settings: Settings) -> PageMessage:
    """The first page message of a scan stored as `marketscan scan start` stores it."""
    engine = create_engine(driver_url(database_url))
    published: list[PageMessage] = []
    try:
        with Session(engine) as session:
            scans.start_scan(session, params(100_000), settings, published.append)
    finally:
        engine.dispose()
    connection = connect(database_url)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_floor (id int PRIMARY KEY, n bigint)")
        cursor.execute("INSERT INTO bench_floor VALUES (1, 0)")
    connection.close()
    return published[0]


def _check_committed(database_url: str, updates: int) -> None:
    """Fail unless every floor UPDATE committed on its own: an UPDATE left inside an open
    transaction would have timed a cheaper floor than the claim's autocommit statement."""
    connection = connect(database_url)
    try:
        committed = scalar(connection, "SELECT n FROM bench_floor WHERE id = 1")
    finally:
        connection.close()
    if committed != updates:
        raise RuntimeError(f"{committed} of the floor's {updates} UPDATEs committed")


def _ledger_calls(message: PageMessage) -> list[str]:
    """The commands one page task's ledger sends, each a call (a round trip) of its own:
    counted on the ledger's client as it runs, so the row follows the ledger if it changes."""
    client = broker_ledger.connection()
    sent: list[str] = []
    execute: Callable[..., Any] = client.execute_command  # redis-py leaves it untyped

    def counted(*args: Any, **options: Any) -> Any:
        sent.append(str(args[0]))
        return execute(*args, **options)

    client.execute_command = counted  # type: ignore[method-assign]
    try:
        _ledger(message)
    finally:
        del client.execute_command
    return sent


def _ledger(message: PageMessage) -> None:
    # The publisher's two marks around the publish, then the receiving worker's.
    broker_ledger.publishing(message)
    broker_ledger.sent(message)
    broker_ledger.taken(message, HOSTNAME)


@contextlib.contextmanager
def _steps(
    engine: Engine, settings: Settings, message: PageMessage
) -> Iterator[dict[str, Callable[[], object]]]:
    """Each timed step as one call: the ledger, the claim, and their floors."""
    sessions = relaxed_sessions(engine)
    client: redis.Redis = broker_ledger.connection()
    raw = engine.raw_connection()
    cursor = raw.cursor()

    def claim() -> None:
        # As run_page claims: its own session, the claim, the session's commit.
        with sessions() as session:
            claimed = page_store.claim(session, message, HOSTNAME, TASK_ID, settings.lease_seconds)
            session.commit()
        if claimed is None:
            raise RuntimeError("the seeded page refused its claim: the figure would time a miss")

    def read() -> None:
        # What a task would still pay to learn where its page stands were the claim's write
        # gone: the same session, one fenced single-column read of the row.
        with sessions() as session:
            if page_store.current_status(session, message) is None:
                raise RuntimeError("the seeded page's row is gone: the figure would time a miss")

    def update() -> None:
        cursor.execute("UPDATE bench_floor SET n = n + 1 WHERE id = 1")

    try:
        yield {
            "ledger": lambda: _ledger(message),
            "claim": claim,
            "read": read,
            "ping": client.ping,
            "update": update,
        }
    finally:
        cursor.close()
        raw.close()


def _interleaved(steps: dict[str, Callable[[], object]], iterations: int) -> dict[str, list[float]]:
    """Seconds of each call of each step, the steps taking turns within every iteration."""
    seconds: dict[str, list[float]] = {step: [] for step in steps}
    order = list(steps.items())
    for iteration in range(iterations):
        shift = iteration % len(order)
        for step, call in order[shift:] + order[:shift]:
            started = time.perf_counter()
            call()
            seconds[step].append(time.perf_counter() - started)
    return seconds


def _row(timings: Timings, calls: list[str], iterations: int, runs: int) -> Row:
    ledger, claim = timings.cost("ledger"), timings.cost("claim")
    ping, update, read = timings.cost("ping"), timings.cost("update"), timings.cost("read")
    runs_spread = ", ".join(
        f"{step} {spread(timings.medians[step], 1000, ' ms')}" for step in STEPS
    )
    means = ", ".join(f"{step} {_ms(median(timings.means[step]))}" for step in STEPS)
    note = _note(ledger, claim, ping, update, read)
    return Row(
        figure="1l the hop's levers, per page task, in-process: the broker ledger and the claim",
        measured=f"ledger {_ms(ledger)} (= {len(calls)} round trips: {', '.join(calls)}); "
        f"claim {_ms(claim)}",
        floor=f"Redis PING {_ms(ping)}, bare autocommit UPDATE {_ms(update)}, fenced read "
        f"{_ms(read)}; figure 1's rows give a page task's whole cost and floor",
        goal="none set (report: what folding them would save at most)",
        met=None,
        note=note,
        # The report prints a row's note only under a missed goal, and this row has none.
        detail=f"{note} Measured: {runs} runs x {iterations:,} iterations, the {len(STEPS)} "
        f"steps interleaved; each run's median per call: {runs_spread}; the runs' means (the "
        f"shared machine's hiccups included): {means}",
    )


def _note(ledger: float, claim: float, ping: float, update: float, read: float) -> str:
    folded, marked = ledger - ping, claim - ping
    return (
        f"The ledger's round trips cost {_ms(ledger)} per task; folding them into the "
        f"transport's calls (the publish's LPUSH, kombu's QoS.append on receipt) would save at "
        f"most {_ms(ledger)} - one round trip ({_ms(ping)}) = {_ms(folded)}. "
        f"The claim costs {_ms(claim)} "
        f"(a bare autocommit UPDATE is {_ms(update)}), which a running mark in Redis beside "
        f"the ledger would replace by about one round trip: at most {_ms(marked)} saved, "
        f"and only for a task that starts a page. The claim also "
        f"hands the task its row (cursor, params, deliveries): unless that travels another "
        f"way, the task still reads it, and a fenced read through the same sessions costs "
        f"{_ms(read)}, which leaves about {_ms(marked - read)}. Neither lever applies per page "
        f"under time slices: a slice pays the ledger and the claim once per task, not per "
        f"page. Figure 1's rows give a page's whole cost, one page per task and with slices."
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"
