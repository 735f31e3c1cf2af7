"""The seed guide's scan loop, as its "Базовый пример" writes it, on the bench's workload.

One process, no Celery: StateManager (sync flavour, PostgreSQL) checkpoints every
`interval` items with `cursor=next_cursor`, the catalog and the opportunity rule are the
chain's (SimulatedMarket, ScanParams.judge), and each opportunity is emitted
as soon as it is found (a line appended to a file, as a bot would send a message). Run in a
child process; shared counters let the parent see how far it got, and `kill_at_item` makes
the child SIGKILL itself right after that item: a crash placed exactly (a kill sent from the
parent lands tens of items late on a busy machine).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from bench.kit.scans import PAGE_SIZE, params
from worker.db import driver_url
from worker.domain.opportunities import Opportunity
from worker.markets.simulated import SimulatedMarket, SimulatedOptions, decode_cursor
from worker.state.manager import SyncStateManager


@dataclass(frozen=True)
class LoopJob:
    """One run of the loop: a new scan, or the resumption of `scan_id` from its checkpoint."""

    database_url: str
    scan_id: str
    items: int
    latency_ms: int
    interval: int
    results_path: str
    resume: bool = False
    kill_at_item: int | None = None


@dataclass(frozen=True)
class LoopCounters:
    """Shared-memory values (multiprocessing RawValue) the child updates as it goes."""

    processed: Any
    last_index: Any
    elapsed_s: Any


def main(job: LoopJob, counters: LoopCounters) -> None:
    """The child's entry point: run the loop to the end (or until it is killed)."""
    engine = create_engine(driver_url(job.database_url))
    with Session(engine) as session:
        state_manager = SyncStateManager(session, checkpoint_interval=job.interval)
        scan_id = uuid.UUID(job.scan_id)
        cursor: str | None = None
        processed = 0
        if job.resume:
            checkpoint = state_manager.load_checkpoint(scan_id)
            assert checkpoint is not None
            cursor, processed = checkpoint.cursor, checkpoint.processed_items
        else:
            state_manager.create_checkpoint(
                scan_id=scan_id, user_id=123456789, operation_type="market_scan"
            )
        state_manager.register_shutdown_handlers(scan_id=scan_id)
        scan_params = params(job.items, latency_ms=job.latency_ms)
        market = SimulatedMarket(
            SimulatedOptions.from_json(scan_params.market_options, development=True)
        )
        results = os.open(job.results_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        started = time.perf_counter()
        while True:
            page = market.fetch_page(cursor, PAGE_SIZE)
            items, next_cursor = page.items, page.next_cursor
            if not items:
                break
            first_index = decode_cursor(cursor)
            for offset, item in enumerate(items):
                hit = scan_params.judge(market.inspect(item))
                if isinstance(hit, Opportunity):
                    os.write(results, f"{hit.item_id}\n".encode())
                processed += 1
                counters.processed.value = processed
                counters.last_index.value = first_index + offset
                if processed == job.kill_at_item:
                    os.kill(os.getpid(), signal.SIGKILL)
                if processed % state_manager.checkpoint_interval == 0:
                    state_manager.save_checkpoint(
                        scan_id=scan_id, cursor=next_cursor, processed_items=processed
                    )
            cursor = next_cursor
            if not cursor:
                break
        state_manager.mark_checkpoint_completed(scan_id)
        counters.elapsed_s.value = time.perf_counter() - started
        os.close(results)
    engine.dispose()
