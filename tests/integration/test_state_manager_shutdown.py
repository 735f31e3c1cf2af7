"""register_shutdown_handlers: SIGTERM saves every registered scan, then runs each callback.

Mostly in real child processes; the leak test signals the test process itself.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from worker.db import driver_url
from worker.state.manager import StateManager

CHILD = textwrap.dedent(
    """
    import sys, time, uuid
    from pathlib import Path
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session
    from worker.db import driver_url
    from worker.state.manager import StateManager

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


MANY = textwrap.dedent(
    """
    import sys, time, uuid
    from pathlib import Path
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session
    from worker.db import driver_url
    from worker.state.manager import StateManager

    url, marker = sys.argv[1], Path(sys.argv[2])
    scans = [uuid.UUID(text) for text in sys.argv[3:]]
    engine = create_engine(driver_url(url))
    first, second = StateManager(Session(engine)), StateManager(Session(engine))

    def cleanup(name):
        def run():
            # What every scan's row says when this callback runs.
            with Session(engine) as s:
                seen = [StateManager(s).load_checkpoint(scan).processed_items for scan in scans]
            with marker.open("a") as out:
                out.write(f"{name} {seen}\\n")
        return run

    for index, scan in enumerate(scans):
        manager = first if index < 2 else second
        manager.create_checkpoint(scan, 42, "market_scan")
        manager.register_shutdown_handlers(scan, cleanup(f"cleanup-{index}"))
        manager.record_progress(scan, f"cursor-{index}", 100 + index)
    print("ready", flush=True)
    time.sleep(60)
    """
)


def _run_until_ready(code: str, *args: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    return child


def _stop(child: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM, then the exit code and stderr; a child that hangs is killed and reported."""
    child.send_signal(signal.SIGTERM)
    try:
        code = child.wait(timeout=60)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        pytest.fail("the shutdown handler hung")
    assert child.stderr is not None
    return code, child.stderr.read()


def test_every_registered_scan_is_saved_before_any_callback_runs(
    database_url: str, session: Session, tmp_path: Path
) -> None:
    # Given three scans registered through two managers of one process, progress recorded
    scans = [uuid.uuid4() for _ in range(3)]
    marker = tmp_path / "marker"
    child = _run_until_ready(MANY, database_url, str(marker), *map(str, scans))
    # When the process is stopped
    code, stderr = _stop(child)
    # Then every scan got its final checkpoint, and only then did each callback run, once
    assert code == 128 + signal.SIGTERM, stderr
    saved = [100, 101, 102]
    assert marker.read_text().splitlines() == [f"cleanup-{i} {saved}" for i in range(3)]
    manager = StateManager(session)
    for index, scan in enumerate(scans):
        checkpoint = manager.load_checkpoint(scan)
        assert checkpoint is not None
        assert (checkpoint.processed_items, checkpoint.cursor) == (100 + index, f"cursor-{index}")


def test_a_database_error_in_the_final_save_is_logged_and_the_callbacks_still_run(
    database_url: str, session: Session, tmp_path: Path
) -> None:
    # Given a database that will refuse the second scan's final save (a real SQL error)
    scans = [uuid.uuid4() for _ in range(3)]
    marker = tmp_path / "marker"
    child = _run_until_ready(MANY, database_url, str(marker), *map(str, scans))
    session.execute(
        text(
            "ALTER TABLE scan_checkpoints ADD CONSTRAINT refuse_101 "
            "CHECK (processed_items <> 101) NOT VALID"
        )
    )
    session.commit()
    # When the process is stopped
    code, stderr = _stop(child)
    # Then the error is logged, not raised into the interrupted code; the rest goes on
    assert code == 128 + signal.SIGTERM, stderr
    assert f"final checkpoint of scan {scans[1]} not saved" in stderr
    assert "Traceback" not in stderr
    assert marker.read_text().splitlines() == [f"cleanup-{i} [100, 0, 102]" for i in range(3)]


LOCKED = textwrap.dedent(
    """
    import sys, time, uuid
    from pathlib import Path
    from sqlalchemy import create_engine, update
    from sqlalchemy.orm import Session
    from models import ScanCheckpoint
    from worker.db import driver_url
    from worker.state.manager import StateManager

    url, scan_id, marker = sys.argv[1], uuid.UUID(sys.argv[2]), Path(sys.argv[3])
    session = Session(create_engine(driver_url(url)))
    manager = StateManager(session)
    manager.create_checkpoint(scan_id, 42, "market_scan")
    manager.register_shutdown_handlers(scan_id, lambda: marker.write_text("cleaned"))
    manager.record_progress(scan_id, "cursor-7", 7)
    # The program's own transaction, not yet committed, holds the row's lock.
    session.execute(
        update(ScanCheckpoint).where(ScanCheckpoint.scan_id == scan_id).values(cursor="mine")
    )
    print("ready", flush=True)
    time.sleep(60)
    """
)


def test_sigterm_while_the_program_holds_the_rows_lock_does_not_deadlock(
    database_url: str, session: Session, tmp_path: Path
) -> None:
    # Given a program stopped while its own uncommitted UPDATE locks the scan's row
    scan_id = uuid.uuid4()
    marker = tmp_path / "marker"
    child = _run_until_ready(LOCKED, database_url, str(scan_id), str(marker))
    # When it is signalled
    code, stderr = _stop(child)
    # Then the final save gives up on the lock (logged), the callback runs and it exits
    assert code == 128 + signal.SIGTERM, stderr
    assert f"final checkpoint of scan {scan_id} not saved" in stderr
    assert marker.read_text() == "cleaned"
    checkpoint = StateManager(session).load_checkpoint(scan_id)
    assert checkpoint is not None and checkpoint.cursor is None  # the last committed state


def _connections_to(session: Session, database_url: str) -> int:
    name = make_url(database_url).database
    count = session.scalar(
        text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = :name AND pid <> pg_backend_pid()"
        ),
        {"name": name},
    )
    session.commit()
    return int(count or 0)


def test_many_registrations_share_one_engine_and_leave_no_connection_open(
    database_url: str, session: Session
) -> None:
    # Given a program that registers 200 scans, each through a manager of its own
    engine = create_engine(driver_url(database_url), poolclass=NullPool)
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    gc.collect()
    engines_before = sum(isinstance(thing, Engine) for thing in gc.get_objects())
    scans = [uuid.uuid4() for _ in range(200)]
    try:
        for scan in scans:
            with Session(engine) as own:
                manager = StateManager(own)
                manager.create_checkpoint(scan, 42, "market_scan")
                manager.register_shutdown_handlers(scan)
                manager.record_progress(scan, "cursor-1", 1)
        gc.collect()
        engines_after = sum(isinstance(thing, Engine) for thing in gc.get_objects())
        # When a real SIGTERM reaches this process and the handler saves all 200
        with pytest.raises(SystemExit):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(30)  # the handler raises SystemExit in here, on the main thread
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
    # Then one engine served every registration, and no final-save connection stays open
    assert engines_after - engines_before <= 1
    assert _connections_to(session, database_url) == 0
    saved = StateManager(session).get_active_checkpoints(user_id=42)
    assert {checkpoint.scan_id for checkpoint in saved if checkpoint.cursor == "cursor-1"} == set(
        scans
    )
