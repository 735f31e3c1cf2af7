"""A seed-style loop that stores DMarket's capped total keeps checkpointing past it.

DMarket reports at most 10,000 items; a loop that marks that total as a lower bound
(`total_is_lower_bound=True`) may save more items than it, on PostgreSQL and in files,
sync and async, and in its SIGTERM final save. Counts inconsistent otherwise are refused.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from worker.db import get_session
from worker.errors import InvalidInput
from worker.state.local import LocalCheckpointStore, LocalStateManager
from worker.state.manager import StateManager

DMARKET_TOTAL_CAP = 10_000
LISTED = 10_600


def test_a_sync_loop_storing_the_capped_total_keeps_saving_past_it(session: Session) -> None:
    # Given a scan created with DMarket's capped total, marked as a lower bound
    manager = StateManager(session)
    scan_id = uuid.uuid4()
    manager.create_checkpoint(
        scan_id, 42, "market_scan", total_items=DMARKET_TOTAL_CAP, total_is_lower_bound=True
    )
    # When the loop saves every 500 items, storing the total each page reports, to 10,600
    for processed in range(500, LISTED + 1, 500):
        manager.save_checkpoint(scan_id, f"c-{processed}", processed, DMARKET_TOTAL_CAP)
    manager.save_checkpoint(scan_id, "c-end", LISTED, DMARKET_TOTAL_CAP)
    # Then every save was kept, and the total reads "at least" what was processed
    loaded = manager.load_checkpoint(scan_id)
    assert loaded is not None
    assert (loaded.processed_items, loaded.total_items, loaded.total_is_lower_bound) == (
        LISTED,
        LISTED,
        True,
    )


def test_an_exact_total_still_refuses_a_larger_count(session: Session) -> None:
    # Given a scan whose total is exact
    manager = StateManager(session)
    scan_id = uuid.uuid4()
    manager.create_checkpoint(scan_id, 42, "market_scan", total_items=DMARKET_TOTAL_CAP)
    # When a save counts past it, Then it is refused, naming the way to mark a lower bound
    with pytest.raises(InvalidInput, match="total_is_lower_bound"):
        manager.save_checkpoint(scan_id, "c", DMARKET_TOTAL_CAP + 1, DMARKET_TOTAL_CAP)
    with pytest.raises(InvalidInput, match="total_is_lower_bound"):
        manager.save_checkpoint(scan_id, "c", DMARKET_TOTAL_CAP + 1)
    # And a flag that is not a bool is refused by name
    with pytest.raises(InvalidInput, match="total_is_lower_bound must be a bool"):
        manager.save_checkpoint(scan_id, "c", 1, total_is_lower_bound="yes")  # type: ignore[arg-type]
    loaded = manager.load_checkpoint(scan_id)
    assert loaded is not None and loaded.processed_items == 0


def test_an_async_loop_marking_the_total_on_save_keeps_saving_past_it(env: dict[str, str]) -> None:
    async def loop() -> tuple[int, int | None, bool]:
        async with get_session() as session:
            manager = StateManager(session)
            scan_id = uuid.uuid4()
            await manager.create_checkpoint(scan_id, 42, "market_scan")
            # The first page says the total is capped; the loop says so when it saves.
            await manager.save_checkpoint(
                scan_id, "c-100", 100, DMARKET_TOTAL_CAP, total_is_lower_bound=True
            )
            for processed in range(1000, LISTED + 1, 1000):
                await manager.save_checkpoint(
                    scan_id, f"c-{processed}", processed, DMARKET_TOTAL_CAP
                )
            await manager.save_checkpoint(scan_id, "c-end", LISTED, DMARKET_TOTAL_CAP)
            loaded = await manager.load_checkpoint(scan_id)
            assert loaded is not None
            return loaded.processed_items, loaded.total_items, loaded.total_is_lower_bound

    assert asyncio.run(loop()) == (LISTED, LISTED, True)


def test_the_file_store_behaves_the_same(tmp_path: Path) -> None:
    store = LocalCheckpointStore(tmp_path / "state")
    capped, exact = uuid.uuid4(), uuid.uuid4()
    store.create_checkpoint(
        capped, 42, "market_scan", total_items=DMARKET_TOTAL_CAP, total_is_lower_bound=True
    )
    store.create_checkpoint(exact, 42, "market_scan", total_items=DMARKET_TOTAL_CAP)
    for processed in range(500, LISTED + 1, 500):
        store.save_checkpoint(capped, f"c-{processed}", processed, DMARKET_TOTAL_CAP)
    store.save_checkpoint(capped, "c-end", LISTED, DMARKET_TOTAL_CAP)
    loaded = store.load_checkpoint(capped)
    assert loaded is not None
    assert (loaded.processed_items, loaded.total_items, loaded.total_is_lower_bound) == (
        LISTED,
        LISTED,
        True,
    )
    with pytest.raises(InvalidInput, match="total_is_lower_bound"):
        store.save_checkpoint(exact, "c", DMARKET_TOTAL_CAP + 1, DMARKET_TOTAL_CAP)
    with pytest.raises(InvalidInput, match="total_is_lower_bound"):
        store.save_checkpoint(exact, "c", DMARKET_TOTAL_CAP + 1)

    async def async_loop() -> int:
        manager = LocalStateManager(tmp_path / "state")
        scan_id = uuid.uuid4()
        await manager.create_checkpoint(scan_id, 42, "market_scan")
        await manager.save_checkpoint(
            scan_id, "c", 100, DMARKET_TOTAL_CAP, total_is_lower_bound=True
        )
        saved = await manager.save_checkpoint(scan_id, "c", LISTED, DMARKET_TOTAL_CAP)
        return saved.processed_items

    assert asyncio.run(async_loop()) == LISTED


CHILD = textwrap.dedent(
    """
    import sys, time, uuid
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session
    from worker.db import driver_url
    from worker.state.manager import StateManager

    url, scan_id = sys.argv[1], uuid.UUID(sys.argv[2])
    manager = StateManager(Session(create_engine(driver_url(url))))
    manager.create_checkpoint(
        scan_id, 42, "market_scan", total_items=10_000, total_is_lower_bound=True
    )
    manager.register_shutdown_handlers(scan_id)
    for processed in range(1, 10_601):
        manager.record_progress(scan_id, f"cursor-{processed}", processed, 10_000)
        if processed % 500 == 0:
            manager.save_checkpoint(scan_id, f"cursor-{processed}", processed, 10_000)
        if processed == 10_234:
            print("ready", flush=True)
            time.sleep(60)
    """
)


def test_the_sigterm_final_save_past_the_capped_total_is_stored(
    database_url: str, session: Session
) -> None:
    # Given a loop past DMarket's capped total, last saved at 10,000, at item 10,234
    scan_id = uuid.uuid4()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, database_url, str(scan_id)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    # When it is stopped with SIGTERM
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 128 + signal.SIGTERM
    # Then its final checkpoint was saved, not skipped
    loaded = StateManager(session).load_checkpoint(scan_id)
    assert loaded is not None
    assert (loaded.processed_items, loaded.cursor) == (10_234, "cursor-10234")
    assert (loaded.total_items, loaded.total_is_lower_bound) == (10_234, True)
