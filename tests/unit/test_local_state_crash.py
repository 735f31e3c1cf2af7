"""LocalCheckpointStore under real process death: SIGKILL mid-write, SIGTERM, racing processes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from worker.domain.status import ScanStatus
from worker.state.file_format import TEMP_SUFFIX
from worker.state.local import LocalCheckpointStore

REPO = Path(__file__).resolve().parents[2]
BLOB = "x" * 60_000  # near the 64 KiB metadata bound, to widen each write's window

WRITER = textwrap.dedent(
    f"""
    import sys
    from worker.state.local import LocalCheckpointStore

    store = LocalCheckpointStore(sys.argv[1])
    scan_id = sys.argv[2]
    store.create_checkpoint(scan_id, 1, "crash_test")
    print("ready", flush=True)
    processed = 0
    while True:
        processed += 1
        store.save_checkpoint(
            scan_id, f"cursor-{{processed}}", processed,
            metadata={{"blob": "x" * {len(BLOB)}, "processed": processed}},
        )
    """
)


Spawn = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start `python -c script args...` from the repo and wait for its "ready" line.

    Children still alive when the test ends (a failed assertion, a hung handler) are killed.
    """
    children: list[subprocess.Popen[str]] = []

    def start(script: str, *args: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", script, *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        children.append(child)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready", child.communicate(timeout=30)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
            child.communicate(timeout=30)


def test_sigkill_at_any_moment_leaves_a_complete_checkpoint(spawn: Spawn, tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    rounds, killed_mid_write, highest = 0, 0, 0
    # At least ten rounds, and more until a kill has landed while a temp file was open.
    while rounds < 10 or (killed_mid_write == 0 and rounds < 50):
        rounds += 1
        # Given a child saving checkpoints 1, 2, 3, ... as fast as it can
        state_dir = tmp_path / f"round-{rounds}"
        scan_id = uuid.uuid4()
        child = spawn(WRITER, str(state_dir), str(scan_id))
        # When it is killed without warning at a random moment
        time.sleep(rng.uniform(0.005, 0.25))
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
        child.communicate()
        # Then its checkpoint loads, whole: one of the values it wrote, never a torn mix
        store = LocalCheckpointStore(state_dir)
        checkpoint = store.load_checkpoint(scan_id)
        assert checkpoint is not None, f"seed {seed}, round {rounds}"
        processed = checkpoint.processed_items
        if processed == 0:
            assert (checkpoint.cursor, checkpoint.metadata) == (None, {})
        else:
            assert checkpoint.cursor == f"cursor-{processed}", f"seed {seed}"
            assert checkpoint.metadata == {"blob": BLOB, "processed": processed}, f"seed {seed}"
        assert checkpoint.status == ScanStatus.IN_PROGRESS
        highest = max(highest, processed)
        # And a temp file the kill left behind is invisible to listing and gone after cleanup
        temps = list(state_dir.glob(f".*{TEMP_SUFFIX}"))
        killed_mid_write += bool(temps)
        assert [c.scan_id for c in store.get_active_checkpoints()] == [scan_id]
        assert store.cleanup_old_checkpoints(days=0) == 0
        assert list(state_dir.glob(f".*{TEMP_SUFFIX}")) == []
        assert store.load_checkpoint(scan_id) == checkpoint
    assert highest > 0, "the child never saved a checkpoint before being killed"
    assert killed_mid_write > 0, f"no kill landed during a write in {rounds} rounds"


SHUTDOWN = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from worker.state.local import LocalStateManager

    state_dir, scan_id, marker = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    manager = LocalStateManager(state_dir)

    async def scan() -> None:
        await manager.create_checkpoint(scan_id, 42, "market_scan", total_items=10_000)
        manager.register_shutdown_handlers(scan_id, lambda: marker.write_text("cleaned"))
        for processed in range(1, 10_001):
            manager.record_progress(scan_id, f"cursor-{processed}", processed)
            if processed % 100 == 0:
                await manager.save_checkpoint(scan_id, f"cursor-{processed}", processed)
            if processed == 1234:
                print("ready", flush=True)
                await asyncio.sleep(60)

    asyncio.run(scan())
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_final_checkpoint_runs_callback_and_exits(
    spawn: Spawn, tmp_path: Path, signum: signal.Signals
) -> None:
    # Given a program that recorded 1,234 items but last saved a checkpoint at 1,200
    scan_id = uuid.uuid4()
    marker = tmp_path / "marker"
    child = spawn(SHUTDOWN, str(tmp_path / "state"), str(scan_id), str(marker))
    # When it is signalled
    child.send_signal(signum)
    # Then it exits with 128+signum, after saving 1,234 and running the callback
    assert child.wait(timeout=30) == 128 + signum
    _, stderr = child.communicate()
    assert "Traceback" not in stderr
    checkpoint = LocalCheckpointStore(tmp_path / "state").load_checkpoint(scan_id)
    assert checkpoint is not None
    assert (checkpoint.processed_items, checkpoint.cursor) == (1234, "cursor-1234")
    assert (checkpoint.total_items, checkpoint.status) == (10_000, ScanStatus.IN_PROGRESS)
    assert marker.read_text() == "cleaned"


COMPLETER = textwrap.dedent(
    """
    import sys, time
    from worker.errors import InvalidTransition
    from worker.state.local import LocalCheckpointStore

    store = LocalCheckpointStore(sys.argv[1])
    print("ready", flush=True)
    time.sleep(max(0.0, float(sys.argv[3]) - time.time()))
    try:
        store.mark_checkpoint_completed(sys.argv[2])
    except InvalidTransition:
        sys.exit(3)
    """
)


def test_racing_processes_complete_a_scan_exactly_once(spawn: Spawn, tmp_path: Path) -> None:
    # Given one scan and six processes set to complete it at the same instant
    store = LocalCheckpointStore(tmp_path)
    scan_id = uuid.uuid4()
    store.create_checkpoint(scan_id, 1, "scan")
    go_at = str(time.time() + 5.0)
    children = [spawn(COMPLETER, str(tmp_path), str(scan_id), go_at) for _ in range(6)]
    # Then the file lock lets exactly one through; the others see it completed
    codes = sorted(child.wait(timeout=30) for child in children)
    for child in children:
        child.communicate()
    assert codes == [0, 3, 3, 3, 3, 3]
    checkpoint = store.load_checkpoint(scan_id)
    assert checkpoint is not None and checkpoint.status == ScanStatus.COMPLETED


BUSY_SHUTDOWN = textwrap.dedent(
    f"""
    import sys
    from pathlib import Path
    from worker.state.local import LocalStateManager

    state_dir, scan_id, marker = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    manager = LocalStateManager(state_dir)
    manager.store.create_checkpoint(scan_id, 1, "busy_scan")
    manager.register_shutdown_handlers(scan_id, lambda: marker.write_text("cleaned"))
    print("ready", flush=True)
    processed = 0
    while True:
        processed += 1
        manager.record_progress(scan_id, f"cursor-{{processed}}", processed)
        manager.store.save_checkpoint(
            scan_id, f"cursor-{{processed}}", processed,
            metadata={{"blob": "x" * {len(BLOB)}, "processed": processed}},
        )
    """
)


def test_sigterm_during_a_save_still_saves_and_exits(spawn: Spawn, tmp_path: Path) -> None:
    rng = random.Random()
    for round_number in range(5):
        # Given a program that spends nearly all its time inside save_checkpoint
        state_dir, marker = tmp_path / f"state-{round_number}", tmp_path / f"marker-{round_number}"
        scan_id = uuid.uuid4()
        child = spawn(BUSY_SHUTDOWN, str(state_dir), str(scan_id), str(marker))
        time.sleep(rng.uniform(0.05, 0.25))
        # When SIGTERM lands, most likely in the middle of a save that holds the lock
        child.send_signal(signal.SIGTERM)
        # Then the handler's own save does not wait on that lock: it exits with 143
        assert child.wait(timeout=30) == 128 + signal.SIGTERM
        _, stderr = child.communicate()
        assert "Traceback" not in stderr
        assert marker.read_text() == "cleaned"
        checkpoint = LocalCheckpointStore(state_dir).load_checkpoint(scan_id)
        assert checkpoint is not None and checkpoint.processed_items > 0
        processed = checkpoint.processed_items
        assert checkpoint.cursor == f"cursor-{processed}"
        # the handler saves no metadata, so it may still be the interrupted save's predecessor's
        assert checkpoint.metadata["processed"] in (processed, processed - 1)
