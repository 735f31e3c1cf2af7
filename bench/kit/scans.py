"""Scans driven from the bench process, and the commit timeline it reads back.

Page commit times come from the database itself: every opportunity a page stores carries
`found_at = now()`, the start of that page's commit transaction. Reading them afterwards
costs the running pipeline nothing (no trigger, no polling); with about 7.7 opportunities
per 100-item page, a page without one is rare and simply merges two intervals.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
import uuid
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench.kit.database import POLL_SECONDS, Connection, connect, scalar
from worker.app import publisher
from worker.chain import lifecycle as scans
from worker.db import driver_url
from worker.domain.scan_params import ScanParams
from worker.settings import get_settings

SEED = 42
PAGE_SIZE = 100


def params(items: int, **market_options: Any) -> ScanParams:
    """A simulated-market scan of `items` items in pages of 100, the bench's workload."""
    return ScanParams(
        game="csgo",
        page_size=PAGE_SIZE,
        fee=get_settings().fee,
        market_options={"items": items, "seed": SEED, **market_options},
    )


def start(
    database_url: str, scan_params: ScanParams, lease_seconds: int = 30, dmarket_api: str = "v2"
) -> uuid.UUID:
    """Store a scan and publish its first page, as `marketscan scan start` does; configured
    for the DMarket API the bench's workers are told to use."""
    settings = dataclasses.replace(
        get_settings(), database_url=database_url, lease_seconds=lease_seconds,
        dmarket_api=dmarket_api,
    )  # fmt: skip
    engine = create_engine(driver_url(database_url))
    try:
        return publisher.start(scan_params, settings=settings, sessions=lambda: Session(engine))
    finally:
        engine.dispose()


def cancel(database_url: str, scan_id: uuid.UUID) -> None:
    engine = create_engine(driver_url(database_url))
    try:
        with Session(engine) as session:
            scans.cancel_scan(session, scan_id)
    finally:
        engine.dispose()


def status(connection: Connection, scan_id: uuid.UUID) -> tuple[str, int, int]:
    """(status, processed_items, page_seq) of a scan."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, processed_items, page_seq FROM scan_checkpoints WHERE scan_id = %s",
            (str(scan_id),),
        )
        row = cursor.fetchone()
    assert row is not None, f"no scan {scan_id}"
    return str(row[0]), int(row[1]), int(row[2])


def wait_for_status(
    connection: Connection,
    scan_id: uuid.UUID,
    statuses: tuple[str, ...] = ("completed",),
    timeout_s: float = 600.0,
    poll_s: float = 0.25,
) -> None:
    deadline = time.monotonic() + timeout_s
    while (current := status(connection, scan_id))[0] not in statuses:
        if time.monotonic() > deadline:
            raise RuntimeError(f"scan {scan_id} still {current} after {timeout_s}s")
        time.sleep(poll_s)


def wait_for_page(
    connection: Connection, scan_id: uuid.UUID, page_seq: int, timeout_s: float = 120.0
) -> None:
    """Until the scan has committed `page_seq` pages."""
    deadline = time.monotonic() + timeout_s
    while status(connection, scan_id)[2] < page_seq:
        if time.monotonic() > deadline:
            raise RuntimeError(f"scan {scan_id} never reached page {page_seq}")
        time.sleep(0.05)


def next_commit_after(
    connection: Connection, scan_id: uuid.UUID, processed: int, timeout_s: float = 120.0
) -> float:
    """Poll the row until processed_items moves past `processed`; the monotonic time seen."""
    deadline = time.monotonic() + timeout_s
    while status(connection, scan_id)[1] == processed:
        if time.monotonic() > deadline:
            raise RuntimeError(f"scan {scan_id} did not commit within {timeout_s}s")
        time.sleep(POLL_SECONDS)
    return time.monotonic()


def page_commit_times(connection: Connection, scan_id: uuid.UUID) -> list[tuple[int, float]]:
    """(page_seq, epoch seconds of its commit transaction) of every page that found something."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT page_seq, extract(epoch FROM min(found_at))::float8"
            " FROM scan_opportunities WHERE scan_id = %s GROUP BY page_seq ORDER BY page_seq",
            (str(scan_id),),
        )
        return [(int(seq), float(at)) for seq, at in cursor.fetchall()]


def seconds_per_page(times: list[tuple[int, float]], skip_pages: int = 5) -> float:
    """First to last commit over the pages in between, leaving out warm-up pages."""
    steady = [(seq, at) for seq, at in times if seq >= skip_pages]
    (first_seq, first_at), (last_seq, last_at) = steady[0], steady[-1]
    return (last_at - first_at) / (last_seq - first_seq)


def page_gaps(times: list[tuple[int, float]]) -> list[tuple[float, float]]:
    """(commit time, seconds per page since the previous commit) along a timeline."""
    return [
        (at, (at - prev_at) / (seq - prev_seq))
        for (prev_seq, prev_at), (seq, at) in itertools.pairwise(times)
    ]


def server_clock(connection: Connection) -> float:
    """The database server's wall clock, comparable with found_at."""
    return float(scalar(connection, "SELECT extract(epoch FROM clock_timestamp())::float8"))


def chain_seconds(database_url: str, pages: int, **market_options: int) -> float:
    """Seconds per page of one scan chain run to completion by the running worker."""
    connection = connect(database_url)
    scan_id = start(database_url, params(pages * 100, **market_options))
    wait_for_status(connection, scan_id, timeout_s=pages * 0.5 + 60)
    per_page = seconds_per_page(page_commit_times(connection, scan_id))
    connection.close()
    return per_page
