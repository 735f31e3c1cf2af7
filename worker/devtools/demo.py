"""`marketscan demo`: a scan on embedded services, a SIGKILLed worker, and the resume.

Shows the promise end to end: the scan finishes with every item counted once and exactly
the opportunities an uninterrupted walk finds.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from worker.app import publisher
from worker.db import close_engines, reset_engines, session_scope
from worker.db.scan_queries import opportunity_count, scan_status, top_opportunities
from worker.devtools.devstack import DevStack, dev_stack
from worker.devtools.processes import CeleryProcess
from worker.devtools.uninterrupted_walk import uninterrupted_opportunities
from worker.domain.checkpoint import Checkpoint
from worker.domain.scan_params import ScanParams
from worker.domain.status import ACTIVE_STATUSES, ScanStatus
from worker.markets.simulated import FAULT_OPTIONS
from worker.settings import DEV_MODE_VARIABLE, Settings, get_settings

DEMO_ITEMS = 3000
DEMO_OPTIONS = {"items": DEMO_ITEMS, "seed": 2026, "latency_ms": 40, "item_latency_ms": 3}
KILL_AT_FRACTION = 0.4
WORKER_HOSTNAME = "demo-worker@marketscan"
POLL_SECONDS = 0.1
READY_TIMEOUT_SECONDS = 60.0


@dataclass
class Timeline:
    started_at: float
    killed_at_items: int = 0
    restart_ready_seconds: float = 0.0
    resume_seconds: float = 0.0


def run_demo(console: Console) -> bool:
    """Run the demo; True when the scan's results match an uninterrupted walk."""
    with tempfile.TemporaryDirectory(prefix="marketscan-demo-") as tmp:
        console.print("[bold]Starting embedded PostgreSQL and Redis...[/bold]")
        with dev_stack(Path(tmp)) as stack:
            return _run(stack, console)


def _run(stack: DevStack, console: Console) -> bool:
    # This process publishes pages too: point its settings (read once) at the stack, a
    # development one (the demo's scan has latencies).
    os.environ.update(
        {key: stack.env[key] for key in ("DATABASE_URL", "CELERY_BROKER_URL", DEV_MODE_VARIABLE)}
    )
    get_settings.cache_clear()
    settings = get_settings()
    reset_engines()
    try:
        return _scan_and_report(stack, console, settings)
    finally:
        close_engines()  # pooled connections would outlive the demo's PostgreSQL


def _scan_and_report(stack: DevStack, console: Console, settings: Settings) -> bool:
    worker = _start_worker(stack)
    stack.beat(echo=False)
    params = ScanParams(
        game="csgo",
        fee=settings.fee,
        user_id=1,
        market_options=dict(DEMO_OPTIONS),
        metadata={"started_by": "demo"},
    )
    scan_id = publisher.start(params, settings=settings)
    console.print(f"Scan [cyan]{scan_id}[/cyan]: {DEMO_ITEMS} simulated CS2 items, 100 per page")
    timeline = Timeline(started_at=time.monotonic())
    with _progress(console) as progress:
        bar = progress.add_task("scanning", total=DEMO_ITEMS)
        checkpoint = _follow(scan_id, progress, bar, until=DEMO_ITEMS * KILL_AT_FRACTION)
        worker.kill_group()
        timeline.killed_at_items = checkpoint.processed_items
        progress.console.print(
            f"[red]SIGKILL[/red] worker pid {worker.pid} at {checkpoint.processed_items} items "
            f"(page {checkpoint.page_seq}); restarting it..."
        )
        restart = time.monotonic()
        worker = _start_worker(stack)
        timeline.restart_ready_seconds = time.monotonic() - restart
        resumed_from = checkpoint.processed_items
        ready = time.monotonic()
        checkpoint = _follow(scan_id, progress, bar, until=resumed_from + 1)
        timeline.resume_seconds = time.monotonic() - ready
        progress.console.print(
            f"[green]resumed[/green] from checkpoint at {resumed_from} items, "
            f"{timeline.resume_seconds:.2f}s after the new worker was ready"
        )
        checkpoint = _follow(scan_id, progress, bar, until=None)
    return _summary(console, checkpoint, params, settings, timeline)


def _start_worker(stack: DevStack) -> CeleryProcess:
    worker = stack.worker(WORKER_HOSTNAME, echo=False)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not _worker_ready(stack):
        if time.monotonic() > deadline or (worker.process and worker.process.poll() is not None):
            raise click.ClickException("the demo worker did not start")
        time.sleep(POLL_SECONDS)
    return worker


def _worker_ready(stack: DevStack) -> bool:
    from worker.app import app

    replies = app.control.ping(destination=[WORKER_HOSTNAME], timeout=0.5)
    return bool(replies)


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)  # fmt: skip


def _follow(scan_id: uuid.UUID, progress: Progress, bar: TaskID, until: float | None) -> Checkpoint:
    """Poll the row into the bar until `until` items (None: a terminal state)."""
    while True:
        with session_scope() as session:
            checkpoint = scan_status(session, scan_id)
        progress.update(bar, completed=checkpoint.processed_items)
        if checkpoint.status not in ACTIVE_STATUSES:
            return checkpoint
        if until is not None and checkpoint.processed_items >= until:
            return checkpoint
        time.sleep(POLL_SECONDS)


def _summary(
    console: Console,
    checkpoint: Checkpoint,
    params: ScanParams,
    settings: Settings,
    timeline: Timeline,
) -> bool:
    with session_scope() as session:
        stored = opportunity_count(session, checkpoint.scan_id)
        top = top_opportunities(session, checkpoint.scan_id, 10)
    expected = len(uninterrupted_opportunities(_without_delays(params), settings))
    elapsed = time.monotonic() - timeline.started_at
    table = Table(title="Scan summary", show_header=False)
    for label, value in (
        ("status", checkpoint.status.value),
        ("items processed", f"{checkpoint.processed_items} of {checkpoint.total_items}"),
        ("pages committed", str(checkpoint.page_seq)),
        ("recoveries", str(checkpoint.recoveries)),
        ("worker killed at", f"{timeline.killed_at_items} items"),
        ("restarted worker ready after", f"{timeline.restart_ready_seconds:.2f}s"),
        ("resumed (ready to next commit)", f"{timeline.resume_seconds:.2f}s"),
        ("total time", f"{elapsed:.1f}s"),
        ("opportunities stored", str(stored)),
        ("found by an uninterrupted walk", str(expected)),
    ):
        table.add_row(label, value)
    console.print(table)
    best = Table(title="Top opportunities")
    for column in ("profit %", "price $", "suggested $", "profit $", "item"):
        best.add_column(column, justify="left" if column == "item" else "right")
    for row in top:
        best.add_row(
            f"{row['profit_percent']:.2f}",
            f"{row['price_cents'] / 100:.2f}",
            f"{row['reference_price_cents'] / 100:.2f}",
            f"{row['profit_cents'] / 100:.2f}",
            row["title"],
        )
    console.print(best)
    exact = (
        checkpoint.status is ScanStatus.COMPLETED
        and checkpoint.processed_items == checkpoint.total_items
        and stored == expected
    )
    verdict = "[green]no item lost, none counted twice[/green]" if exact else "[red]MISMATCH[/red]"
    console.print(verdict)
    return exact


def _without_delays(params: ScanParams) -> ScanParams:
    options = {k: v for k, v in params.market_options.items() if k not in FAULT_OPTIONS}
    return ScanParams.from_json({**params.to_json(), "market_options": options})
