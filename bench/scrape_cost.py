"""15. What a scrape of `marketscan metrics` costs as the stored rows grow, and what keeping
its counts costs a page commit. A scrape is timed in the bench process as the exporter
serves it (worker.metrics.exporter's collector and registry, `generate_latest`: every
PostgreSQL and Redis read, and the text), 50 times after 5 unmeasured ones, first on an
empty database, then after 10,000 finished scans with 100 finds each (1,000,000
opportunities) are bulk-inserted with generate_series and VACUUM ANALYZEd; medians. The
row tallies' triggers keep the counts as the rows go in, so a scrape reads 64 tally rows
and the running scans, whatever is stored. For scale, the same run times the aggregate
reads the scrape used to run (checkpoints counted by status, the chain's sums, the finds
counted) on the same rows, and checks that the running scans' read (the oldest waits)
plans no sequential scan of a day that holds rows (it reads the status index).
The second row is the price of the triggers: a page commit's statements (its checkpoint's
UPDATE and an INSERT of 8 finds, then COMMIT) in a loop of 200, with the tally triggers
enabled and disabled in turn, 10 pairs, the order alternating; the cost is the median of
the pairs' differences.
"""

from __future__ import annotations

import re
import time

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from bench.kit import dataset
from bench.kit.database import Connection, connect, scalar
from bench.kit.harness import Bench, say
from bench.kit.report import Row, median, ms, spread
from worker import broker_redis
from worker.db import driver_url
from worker.db import opportunity_days as days_sql
from worker.metrics import events, exporter
from worker.settings import DEFAULT_SENTINEL_MASTER

NAME = "scrape-cost"
SCRAPES, WARM_UP = 50, 5
FINDS_PER_SCAN = 100
COMMITS, PAIRS = 200, 10
FINDS_PER_COMMIT = 8
GOAL_RATIO = 1.5
GOAL_COMMIT_S = 0.0002
# The scrape's aggregate reads before the row tallies, for scale.
OLD_READS = (
    "SELECT status, count(*) FROM scan_checkpoints GROUP BY status",
    "SELECT coalesce(sum(page_seq), 0), coalesce(sum(processed_items), 0),"
    " coalesce(sum(skipped_items), 0) FROM scan_checkpoints WHERE runner = 'chain'",
    "SELECT count(*) FROM scan_opportunities",
)
AGES = (
    "EXPLAIN SELECT min(queued_at), min(timestamp) FROM scan_checkpoints"
    " WHERE runner = 'chain' AND status = 'in_progress'"
)
TRIGGERS = (
    ("scan_checkpoints", "row_tallies_update"),
    ("scan_opportunities", "row_tallies_insert"),
)


def run(bench: Bench) -> list[Row]:
    finds = bench.size(1_000_000, 100_000)
    scans = finds // FINDS_PER_SCAN
    with bench.database(NAME) as url:
        connection = connect(url)
        engine = create_engine(driver_url(url))
        broker = broker_redis.new_client(bench.broker_url, DEFAULT_SENTINEL_MASTER)
        fleet = exporter.registry(
            exporter.fleet_collector(sessionmaker(engine), broker, events.RedisEventStore(broker))
        )
        empty = _scrape_seconds(fleet)
        stored = time.monotonic()
        _store(connection, finds)
        say(f"{NAME}: {finds:,} finds stored in {time.monotonic() - stored:.0f}s")
        full = _scrape_seconds(fleet)
        old = median([_seconds(connection, OLD_READS) for _ in range(5)])
        scanned = _scanned_whole(connection)
        commit_cost, on, off = _commit_cost(connection)
        engine.dispose()
        broker.close()
        connection.close()
    ratio = median(full) / median(empty)
    say(f"{NAME}: scrape {ms(median(empty))} empty, {ms(median(full))} at {finds:,} finds")
    return [
        Row(
            figure=f"15 metrics scrape at {finds:,} stored finds ({scans:,} scans) vs none",
            measured=f"{ms(median(full))} at {finds:,}",
            floor=f"{ms(median(empty))} empty -> {ratio:.2f}x",
            goal=f"<= {GOAL_RATIO}x (independent of the rows)",
            met=ratio <= GOAL_RATIO and not scanned,
            note=f"the running scans' read scans {', '.join(scanned)} whole" if scanned else "",
            detail=f"scrapes empty {spread(empty, 1000, ' ms')}, full {spread(full, 1000, ' ms')};"
            f" the aggregate reads scrapes used to run take {ms(old)} on the same rows;"
            f" the running scans' read (the oldest waits) scans {len(scanned)} stored days whole",
        ),
        Row(
            figure=f"15 row tallies' upkeep per page commit (UPDATE + {FINDS_PER_COMMIT} finds)",
            measured=f"{commit_cost * 1000:+.3f} ms/commit",
            floor=f"triggers off {ms(median(off))}, on {ms(median(on))}",
            goal=f"<= +{GOAL_COMMIT_S * 1000:.1f} ms/commit",
            met=commit_cost <= GOAL_COMMIT_S,
            detail=f"commits with triggers {spread(on, 1000, ' ms')}, without "
            f"{spread(off, 1000, ' ms')}",
        ),
    ]


def _scrape_seconds(fleet: CollectorRegistry) -> list[float]:
    for _ in range(WARM_UP):
        generate_latest(fleet)
    took = []
    for _ in range(SCRAPES):
        started = time.perf_counter()
        generate_latest(fleet)
        took.append(time.perf_counter() - started)
    return took


def _store(connection: Connection, finds: int) -> None:
    """Finished scans of today, FINDS_PER_SCAN finds each, as the page commits store them."""
    dataset.insert_checkpoints(
        connection, finds // FINDS_PER_SCAN, users=1000, status_sql="'completed'",
        age_days_sql="0",
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO scan_opportunities (scan_id, scan_day, item_id, title, price_cents,"
            " reference_price_cents, profit_hundredths, page_seq)"
            " SELECT c.scan_id, (c.created_at AT TIME ZONE 'UTC')::date,"
            " convert_to('item-' || n, 'UTF8'), 'AK-47 | Redline (Field-Tested)', 1000, 1300,"
            " 2090, n / 10 FROM scan_checkpoints c CROSS JOIN generate_series(1, %s) AS n",
            (FINDS_PER_SCAN,),
        )
    dataset.vacuum_analyze(connection)
    stored = scalar(connection, "SELECT sum(opportunities) FROM row_tallies")
    assert stored == finds, f"the tallies count {stored} finds of {finds}"


def _scanned_whole(connection: Connection) -> list[str]:
    """The day partitions holding rows that the running scans' read plans to scan whole
    (an empty day's partition is scanned for nothing, at no cost)."""
    plan = "\n".join(str(row[0]) for row in _rows(connection, AGES))
    scanned = re.findall(r"Seq Scan on (\w+)", plan)
    return [
        table
        for table in scanned
        if scalar(
            connection,
            "SELECT c.reltuples > 0 FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE c.relname = %s AND n.nspname = %s",
            (table, days_sql.CHECKPOINTS.schema),
        )
    ]


def _rows(connection: Connection, sql: str) -> list[tuple[object, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return list(cursor.fetchall())


def _seconds(connection: Connection, statements: tuple[str, ...]) -> float:
    started = time.perf_counter()
    for statement in statements:
        _rows(connection, statement)
    return time.perf_counter() - started


def _commit_cost(connection: Connection) -> tuple[float, list[float], list[float]]:
    """The median paired difference of a page commit with the tally triggers and without,
    and the per-commit times of each."""
    scan_id = scalar(
        connection,
        "INSERT INTO scan_checkpoints (scan_id, user_id, operation_type, status)"
        " VALUES (gen_random_uuid(), 1, 'market_scan', 'in_progress') RETURNING scan_id",
    )
    times: dict[bool, list[float]] = {True: [], False: []}
    for pair in range(PAIRS):
        for enabled in (True, False) if pair % 2 == 0 else (False, True):
            _triggers(connection, enabled)
            times[enabled].append(_commits_seconds(connection, scan_id, f"{pair}-{enabled}"))
    _triggers(connection, True)
    differences = [on - off for on, off in zip(times[True], times[False], strict=True)]
    return median(differences), times[True], times[False]


def _triggers(connection: Connection, enabled: bool) -> None:
    with connection.cursor() as cursor:
        for table, trigger in TRIGGERS:
            cursor.execute(
                f"ALTER TABLE {table} {'ENABLE' if enabled else 'DISABLE'} TRIGGER {trigger}"
            )


def _commits_seconds(connection: Connection, scan_id: object, run: str) -> float:
    connection.autocommit = False
    try:
        with connection.cursor() as cursor:
            started = time.perf_counter()
            for commit in range(COMMITS):
                cursor.execute(
                    "UPDATE scan_checkpoints SET page_seq = page_seq + 1,"
                    " processed_items = processed_items + 100, timestamp = now(),"
                    " updated_at = now() WHERE scan_id = %s",
                    (scan_id,),
                )
                cursor.execute(
                    "INSERT INTO scan_opportunities (scan_id, scan_day, item_id, title,"
                    " price_cents, reference_price_cents, profit_hundredths, page_seq)"
                    " SELECT %s, (now() AT TIME ZONE 'UTC')::date,"
                    " convert_to(%s || '-' || n, 'UTF8'), 'AK', 1000, 1300, 2090, %s"
                    " FROM generate_series(1, %s) AS n",
                    (scan_id, f"{run}-{commit}", commit, FINDS_PER_COMMIT),
                )
                connection.commit()
            return (time.perf_counter() - started) / COMMITS
    finally:
        connection.autocommit = True
