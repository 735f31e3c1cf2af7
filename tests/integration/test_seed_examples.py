"""The seed guide's examples, run from the guide's own text: three on PostgreSQL, one on files.

Nothing in the examples is edited. What the guide leaves to its reader is supplied around
them: `fetch_items` (a small in-memory catalog), `datetime` (used, not imported, by the
basic example), and `scan_id` (used, not defined, by the LocalStateManager example).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import signal
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanStatus
from tests.seed.guide import compiled, guide_imports
from worker.state.local import DEFAULT_LOCAL_OPERATION_TYPE, DEFAULT_LOCAL_USER_ID

CATALOG = [f"item-{n}" for n in range(350)]
BASIC, RESUME, CLEANUP = (
    "Базовый пример",
    "Восстановление после сбоя",
    "Очистка старых checkpoints",
)
LOCAL = "Local State Manager (для разработки)"


async def fetch_items(cursor: str | None = None, limit: int = 100) -> tuple[list[str], str | None]:
    start = int(cursor or 0)
    items = CATALOG[start : start + limit]
    end = start + len(items)
    return items, (str(end) if end < len(CATALOG) else None)


@pytest.fixture
def guide(env: dict[str, str]) -> Iterator[dict[str, Any]]:
    """One namespace holding the three database examples, as one program of the guide's."""
    namespace: dict[str, Any] = {"fetch_items": fetch_items, "datetime": datetime}
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with guide_imports():
        for title in (BASIC, RESUME, CLEANUP):
            exec(compiled(title), namespace)
        yield namespace
    # The basic example registers shutdown handlers in this (the test) process.
    signal.signal(signal.SIGTERM, handlers[0])
    signal.signal(signal.SIGINT, handlers[1])


def test_basic_example_checkpoints_every_100_items_and_completes(
    guide: dict[str, Any], session: Session
) -> None:
    asyncio.run(guide["scan_market_with_recovery"]())
    row = session.scalars(select(ScanCheckpoint)).one()
    assert row.status == ScanStatus.COMPLETED.value
    # The last checkpoint the loop saved was at item 300, with the cursor of the page after.
    assert (row.user_id, row.operation_type) == (123456789, "market_scan")
    assert (row.processed_items, row.cursor) == (300, "300")
    assert row.meta["game"] == "csgo"


def test_resume_example_finds_the_newest_active_checkpoint(
    guide: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    async def interrupted_scans() -> None:
        async with guide["get_session"]() as s:
            manager = guide["StateManager"](s)
            older, newer = uuid.uuid4(), uuid.uuid4()
            await manager.create_checkpoint(older, 123456789, "market_scan")
            await manager.create_checkpoint(newer, 123456789, "market_scan")
            await manager.save_checkpoint(older, "100", 100)
            await manager.save_checkpoint(newer, "200", 200)

    asyncio.run(interrupted_scans())
    asyncio.run(guide["resume_scan"]())
    assert capsys.readouterr().out == "Восстановление с позиции: 200\n"


def test_resume_example_with_nothing_active_says_so(
    guide: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(guide["resume_scan"]())
    assert capsys.readouterr().out == "Нет незавершенных сканирований\n"


def test_cleanup_example_deletes_old_terminal_checkpoints(
    guide: dict[str, Any], session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    async def finished_scans() -> None:
        async with guide["get_session"]() as s:
            manager = guide["StateManager"](s)
            for _ in range(3):
                scan_id = uuid.uuid4()
                await manager.create_checkpoint(scan_id, 1, "market_scan")
                await manager.mark_checkpoint_completed(scan_id)

    asyncio.run(finished_scans())
    session.execute(
        update(ScanCheckpoint)
        .where(ScanCheckpoint.id.in_([1, 2]))
        .values(updated_at=func.now() - timedelta(days=8))
    )
    session.commit()
    asyncio.run(guide["cleanup_old_data"]())
    asyncio.run(guide["cleanup_old_data"]())
    assert capsys.readouterr().out == "Удалено 2 старых checkpoints\nУдалено 0 старых checkpoints\n"


def test_local_state_manager_example_saves_and_loads_a_scan_it_never_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the guide's relative state_dir, under a fresh working directory
    monkeypatch.chdir(tmp_path)
    scan_id = uuid.uuid4()
    namespace: dict[str, Any] = {"scan_id": scan_id}
    # When the example runs as written: save first, then load
    with guide_imports():
        pending = eval(compiled(LOCAL), namespace)
        assert inspect.iscoroutine(pending)
        asyncio.run(pending)
    # Then the save created the scan, with the documented defaults, and the load found it
    assert capsys.readouterr().out == "Восстановлено: 250 предметов\n"
    stored = json.loads((tmp_path / "data" / "checkpoints" / f"{scan_id}.json").read_text())
    assert (stored["status"], stored["cursor"], stored["processed_items"]) == (
        "in_progress", "next_page_token", 250,
    )  # fmt: skip
    assert stored["user_id"] == DEFAULT_LOCAL_USER_ID == 0
    assert stored["operation_type"] == DEFAULT_LOCAL_OPERATION_TYPE == "market_scan"
