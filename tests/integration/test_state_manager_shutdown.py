"""register_shutdown_handlers in a real child process: SIGTERM saves the latest progress."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from worker.state_manager import StateManager

CHILD = textwrap.dedent(
    """
    import sys, time, uuid
    from pathlib import Path
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session
    from worker.db import driver_url
    from worker.state_manager import StateManager

    url, scan_id, marker = sys.argv[1], uuid.UUID(sys.argv[2]), Path(sys.argv[3])
    session = Session(create_engine(driver_url(url)))
    manager = StateManager(session)
    manager.create_checkpoint(scan_id, 42, "market_scan", total_items=10_000)
    manager.register_shutdown_handlers(scan_id, lambda: marker.write_text("cleaned"))
    for processed in range(1, 10_001):
        manager.record_progress(scan_id, f"cursor-{processed}", processed)
        if processed % 100 == 0:
            manager.save_checkpoint(scan_id, f"cursor-{processed}", processed)
        if processed == 1234:
            print("ready", flush=True)
            time.sleep(60)
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_final_checkpoint_runs_callback_and_exits(
    database_url: str, session: Session, tmp_path: Path, signum: signal.Signals
) -> None:
    # Given a program that recorded 1,234 items but last saved a checkpoint at 1,200
    scan_id = uuid.uuid4()
    marker = tmp_path / "marker"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, database_url, str(scan_id), str(marker)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    # When it is signalled
    child.send_signal(signum)
    # Then it exits with 128+signum, after saving 1,234 and running the callback
    assert child.wait(timeout=30) == 128 + signum
    checkpoint = StateManager(session).load_checkpoint(scan_id)
    assert checkpoint is not None
    assert (checkpoint.processed_items, checkpoint.cursor) == (1234, "cursor-1234")
    assert marker.read_text() == "cleaned"
