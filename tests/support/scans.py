"""Helpers for tests that drive scans: the CLI as a subprocess, waiting, expected results."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanOpportunity
from worker.chain import lifecycle
from worker.db import driver_url, session_scope
from worker.db.scan_queries import judged_fee_and_profit
from worker.devtools.uninterrupted_walk import uninterrupted_opportunities
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams, frozen_fee
from worker.markets.simulated import FAULT_OPTIONS
from worker.settings import Settings


def cli(
    args: list[str], env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_scan_cli(env: Mapping[str, str], *args: str) -> uuid.UUID:
    done = cli(["scan", "start", "--game", "csgo", "--json", *args], env)
    assert done.returncode == 0, done.stderr
    return uuid.UUID(json.loads(done.stdout)["scan_id"])


def row(database_url: str, scan_id: uuid.UUID) -> ScanCheckpoint:
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        found = session.scalars(
            select(ScanCheckpoint).where(ScanCheckpoint.scan_id == scan_id)
        ).one()
        session.expunge(found)
    engine.dispose()
    return found


def wait_for_status(
    database_url: str,
    scan_id: uuid.UUID,
    statuses: tuple[str, ...] = ("completed",),
    timeout: float = 120,
) -> ScanCheckpoint:
    deadline = time.monotonic() + timeout
    while True:
        current = row(database_url, scan_id)
        if current.status in statuses:
            return current
        if time.monotonic() > deadline:
            raise AssertionError(
                f"scan {scan_id} is {current.status} at {current.processed_items} items "
                f"after {timeout}s"
            )
        time.sleep(0.1)


def wait_for_progress(
    database_url: str, scan_id: uuid.UUID, items: int, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while row(database_url, scan_id).processed_items < items:
        assert time.monotonic() < deadline, f"scan {scan_id} never reached {items} items"
        time.sleep(0.02)


def stored_opportunities(database_url: str, scan_id: uuid.UUID) -> set[tuple[str, int, int]]:
    """(item_id, price, profit) of what the scan stored, the profit as results show it."""
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        params = session.scalar(
            select(ScanCheckpoint.params).where(ScanCheckpoint.scan_id == scan_id)
        )
        fee = frozen_fee(params)
        found = {
            (row.item_id, row.price_cents, judged_fee_and_profit(row, fee)[1])
            for row in session.scalars(
                select(ScanOpportunity).where(ScanOpportunity.scan_id == scan_id)
            )
        }
    engine.dispose()
    return found


def expected_opportunities(params: ScanParams) -> set[tuple[str, int, int]]:
    """What an uninterrupted walk of the simulated catalog finds, computed directly."""
    # Latency and injected faults change how a scan runs, never what it finds.
    quiet = ScanParams.from_json(
        {**params.to_json(), "market_options": {
            k: v for k, v in params.market_options.items()
            if k not in FAULT_OPTIONS
        }}
    )  # fmt: skip
    return {
        (hit.item_id, hit.price_cents, hit.profit_cents)
        for hit in uninterrupted_opportunities(quiet, Settings())
    }


def queued_page(settings: Settings, scan_id: uuid.UUID | None = None) -> PageMessage:
    """Start a 200-item simulated scan in this process; the first page's message."""
    published: list[PageMessage] = []
    params = ScanParams(game="csgo", page_size=100, fee=settings.fee, market_options={"items": 200})
    with session_scope() as session:
        lifecycle.start_scan(session, params, settings, published.append, scan_id=scan_id)
    return published[0]
