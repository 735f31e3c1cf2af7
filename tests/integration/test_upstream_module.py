"""Programs coming from the upstream module: one written its way runs on our module, and the
three places docs/python-api.md's "Coming from the upstream module" says we keep our behaviour."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import ScanCheckpoint as ScanRow
from worker.db import get_session
from worker.domain.status import ScanStatus
from worker.errors import CorruptCheckpoint
from worker.state_manager import LocalStateManager, StateManager


def test_a_program_written_the_upstream_way_runs_on_postgres(
    env: dict[str, str], session: Session
) -> None:
    # Given a bot loop of upstream's shape, and a market that fails three times in a row
    scan_id = uuid.uuid4()
    outcomes = "ok,ok,fail,fail,ok,fail,fail,fail,ok,ok"
    # When it runs against our module
    finished = subprocess.run(
        [sys.executable, "-m", "tests.support.upstream_program", str(scan_id), outcomes],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    # Then the counter resets on success, the third error in a row pauses and alerts once,
    # /status reads the pause, /resume clears it, and the scan finishes from its checkpoint
    assert finished.stdout.splitlines() == [
        "error: page 3: 503",
        "error: page 3: 503",
        "error: page 4: 503",
        "error: page 4: 503",
        "error: page 4: 503",
        "ALERT: bot paused: 3 consecutive errors",
        "/status errors=3 paused=True processed=300 cursor=4",
        "/resume errors=0 paused=False",
        "done processed=500 extra_data={'game': 'csgo', 'page': 6}",
    ]
    row = session.scalars(select(ScanRow).where(ScanRow.scan_id == scan_id)).one()
    assert (row.status, row.processed_items, row.cursor) == ("completed", 500, "6")
    assert (row.user_id, row.runner) == (123456789, "caller")  # recovery never touches it
    assert row.meta == {"game": "csgo", "page": 6}


def test_completing_keeps_the_cursor_and_counts(env: dict[str, str]) -> None:
    # Upstream's mark_checkpoint_completed saves cursor None and 0 items; ours keeps them.
    scan_id = uuid.uuid4()

    async def run() -> tuple[object, ...]:
        async with get_session() as session:
            state_manager = StateManager(session=session)
            await state_manager.create_checkpoint(
                scan_id=scan_id, user_id=1, operation_type="market_scan", total_items=1000
            )
            await state_manager.save_checkpoint(scan_id=scan_id, cursor="7", processed_items=700)
            await state_manager.mark_checkpoint_completed(scan_id)
            loaded = await state_manager.load_checkpoint(scan_id)
            assert loaded is not None
            return loaded.status, loaded.cursor, loaded.processed_items, loaded.total_items

    assert asyncio.run(run()) == (ScanStatus.COMPLETED, "7", 700, 1000)


SIGTERMED = textwrap.dedent(
    """
    import asyncio, sys, uuid
    from worker.db import get_session
    from worker.state_manager import StateManager

    async def main(first, second):
        async with get_session() as session:
            state_manager = StateManager(session=session, max_consecutive_errors=5)
            for scan_id, cursor in ((first, "a-2"), (second, "b-5")):
                await state_manager.create_checkpoint(
                    scan_id=scan_id, user_id=1, operation_type="market_scan"
                )
                state_manager.register_shutdown_handlers(scan_id=scan_id)
                await state_manager.save_checkpoint(
                    scan_id=scan_id, cursor=cursor, processed_items=200
                )
            # Progress since the last save, which the final save must not lose
            state_manager.record_progress(first, "a-3", 250)
            state_manager.record_progress(second, "b-6", 550)
            print("ready", flush=True)
            await asyncio.sleep(60)

    asyncio.run(main(uuid.UUID(sys.argv[1]), uuid.UUID(sys.argv[2])))
    """
)


def test_sigterm_saves_every_registered_scan_before_exiting(
    env: dict[str, str], session: Session
) -> None:
    # Upstream registers once per manager and schedules one save it exits before running.
    first, second = uuid.uuid4(), uuid.uuid4()
    child = subprocess.Popen(
        [sys.executable, "-c", SIGTERMED, str(first), str(second)],
        env=env, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 128 + signal.SIGTERM
    rows = session.scalars(select(ScanRow).where(ScanRow.scan_id.in_([first, second])))
    saved = {row.scan_id: (row.cursor, row.processed_items, row.status) for row in rows}
    assert saved == {first: ("a-3", 250, "in_progress"), second: ("b-6", 550, "in_progress")}


def test_a_corrupt_local_file_raises_instead_of_reading_as_no_checkpoint(
    tmp_path: Path,
) -> None:
    # Upstream's load_checkpoint logs and returns None: the bot would start the scan afresh.
    manager = LocalStateManager(state_dir=tmp_path)
    scan_id = uuid.uuid4()
    torn = tmp_path / f"{scan_id}.json"
    torn.write_text("invalid json {")
    with pytest.raises(CorruptCheckpoint) as raised:
        asyncio.run(manager.load_checkpoint(scan_id))
    assert str(raised.value).startswith(f"checkpoint file {torn} is not valid JSON")
    with pytest.raises(CorruptCheckpoint):
        asyncio.run(manager.get_active_checkpoints())
    assert torn.read_text() == "invalid json {"  # left for a person to look at
