"""The seed guide's three async examples, run nearly verbatim on PostgreSQL.

Changes from the guide: import paths (`worker.*` for `src.utils.*`), a `fetch_items` over a
small in-memory catalog, and return values so the tests can assert.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.orm import Session

from models import ScanCheckpoint, ScanStatus
from worker.db import get_session
from worker.state_manager import AsyncStateManager, StateManager

CATALOG = [f"item-{n}" for n in range(350)]


async def fetch_items(cursor: str | None = None, limit: int = 100) -> tuple[list[str], str | None]:
    start = int(cursor or 0)
    items = CATALOG[start : start + limit]
    end = start + len(items)
    return items, (str(end) if end < len(CATALOG) else None)


async def scan_market_with_recovery() -> Any:
    """Сканирование рынка с checkpoint system."""
    async with get_session() as session:
        state_manager = StateManager(
            session=session,
            checkpoint_interval=100,  # Сохранять каждые 100 предметов
        )

        # Создать новый scan
        scan_id = uuid.uuid4()
        await state_manager.create_checkpoint(
            scan_id=scan_id,
            user_id=123456789,
            operation_type="market_scan",
            metadata={
                "game": "csgo",
                "level": "standard",
                "started_at": datetime.utcnow().isoformat(),
            },
        )

        # Регистрация graceful shutdown
        state_manager.register_shutdown_handlers(
            scan_id=scan_id, cleanup_callback=lambda: print("Cleanup resources...")
        )

        cursor = None
        processed = 0

        while True:
            # Получить batch предметов
            items, next_cursor = await fetch_items(cursor=cursor, limit=100)

            if not items:
                break

            # Обработать предметы
            for _item in items:
                # ... обработка ...
                processed += 1

                # Автоматическое сохранение checkpoint
                if processed % state_manager.checkpoint_interval == 0:
                    await state_manager.save_checkpoint(
                        scan_id=scan_id,
                        cursor=next_cursor,
                        processed_items=processed,
                    )

            cursor = next_cursor

            if not cursor:
                break

        # Отметить как завершенное
        await state_manager.mark_checkpoint_completed(scan_id)
        return scan_id, await state_manager.load_checkpoint(scan_id)


async def resume_scan() -> Any:
    """Продолжить прерванное сканирование."""
    async with get_session() as session:
        state_manager = StateManager(session)

        # Найти активные checkpoints
        active = await state_manager.get_active_checkpoints(
            user_id=123456789, operation_type="market_scan"
        )

        if not active:
            print("Нет незавершенных сканирований")
            return None

        # Восстановить последний checkpoint
        checkpoint = active[0]
        print(f"Восстановление с позиции: {checkpoint.processed_items}")

        # Продолжить с cursor
        cursor = checkpoint.cursor
        processed = checkpoint.processed_items

        # Продолжить сканирование...
        return checkpoint.scan_id, cursor, processed


async def cleanup_old_data() -> int:
    """Очистить старые checkpoints."""
    async with get_session() as session:
        state_manager = StateManager(session)

        # Удалить checkpoints старше 7 дней
        deleted = await state_manager.cleanup_old_checkpoints(days=7)
        print(f"Удалено {deleted} старых checkpoints")
        return deleted


def test_basic_save_loop_checkpoints_and_completes(env: dict[str, str]) -> None:
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        scan_id, final = asyncio.run(scan_market_with_recovery())
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
    assert final.scan_id == scan_id
    assert final.status is ScanStatus.COMPLETED
    # The last checkpoint the loop saved was at item 300, with the cursor of the page after.
    assert (final.processed_items, final.cursor) == (300, "300")
    assert final.metadata["game"] == "csgo"


def test_resume_finds_the_newest_active_checkpoint(env: dict[str, str], session: Session) -> None:
    async def interrupted_scans() -> uuid.UUID:
        async with get_session() as s:
            manager = StateManager(s)
            assert isinstance(manager, AsyncStateManager)
            older, newer = uuid.uuid4(), uuid.uuid4()
            await manager.create_checkpoint(older, 123456789, "market_scan")
            await manager.create_checkpoint(newer, 123456789, "market_scan")
            await manager.save_checkpoint(older, "100", 100)
            await manager.save_checkpoint(newer, "200", 200)
            return newer

    newer = asyncio.run(interrupted_scans())
    assert asyncio.run(resume_scan()) == (newer, "200", 200)


def test_resume_with_nothing_active_returns_none(env: dict[str, str]) -> None:
    assert asyncio.run(resume_scan()) is None


def test_cleanup_example_deletes_old_terminal_checkpoints(
    env: dict[str, str], session: Session
) -> None:
    async def old_and_new() -> None:
        async with get_session() as s:
            manager = StateManager(s)
            for _ in range(3):
                scan_id = uuid.uuid4()
                await manager.create_checkpoint(scan_id, 1, "market_scan")
                await manager.mark_checkpoint_completed(scan_id)

    asyncio.run(old_and_new())
    session.execute(
        update(ScanCheckpoint)
        .where(ScanCheckpoint.id.in_([1, 2]))
        .values(updated_at=func.now() - timedelta(days=8))
    )
    session.commit()
    assert asyncio.run(cleanup_old_data()) == 2
    assert asyncio.run(cleanup_old_data()) == 0
