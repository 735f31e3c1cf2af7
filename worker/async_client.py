"""The client for asyncio apps (an aiogram bot, a FastAPI backend): worker.client, awaitable.

Each call runs the sync client in a worker thread, so the event loop never blocks on the
database or the broker, and both clients validate and behave exactly alike.

    scan_id = await async_client.start("csgo", user_id=42)
    async for checkpoint in async_client.progress(scan_id):
        await message.edit_text(f"{checkpoint.processed_items} items")
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

from worker import client
from worker.domain.checkpoint import Checkpoint
from worker.domain.watch import Watch


async def start(game: str, **options: Any) -> uuid.UUID:
    """worker.client.start: the same keyword options, including `scan_id`."""
    return await asyncio.to_thread(client.start, game, **options)


async def status(scan_id: uuid.UUID | str) -> Checkpoint:
    return await asyncio.to_thread(client.status, scan_id)


async def scans(
    user_id: int | None = None, status: str | None = None, id_prefix: str | None = None
) -> list[Checkpoint]:
    return await asyncio.to_thread(client.scans, user_id, status, id_prefix)


async def running_scans(user_id: int) -> int:
    return await asyncio.to_thread(client.running_scans, user_id)


async def results(scan_id: uuid.UUID | str, top: int = 20) -> list[dict[str, Any]]:
    return await asyncio.to_thread(client.results, scan_id, top)


async def pause(scan_id: uuid.UUID | str) -> Checkpoint:
    return await asyncio.to_thread(client.pause, scan_id)


async def resume(scan_id: uuid.UUID | str) -> Checkpoint:
    return await asyncio.to_thread(client.resume, scan_id)


async def cancel(scan_id: uuid.UUID | str) -> Checkpoint:
    return await asyncio.to_thread(client.cancel, scan_id)


async def add_watch(game: str, **options: Any) -> Watch:
    """worker.client.add_watch: the same keyword options, including `watch_id`."""
    return await asyncio.to_thread(client.add_watch, game, **options)


async def list_watches(owner_id: int, id_prefix: str | None = None) -> list[Watch]:
    return await asyncio.to_thread(client.list_watches, owner_id, id_prefix)


async def pause_watch(watch_id: uuid.UUID | str, owner_id: int) -> Watch:
    return await asyncio.to_thread(client.pause_watch, watch_id, owner_id)


async def resume_watch(watch_id: uuid.UUID | str, owner_id: int) -> Watch:
    return await asyncio.to_thread(client.resume_watch, watch_id, owner_id)


async def remove_watch(watch_id: uuid.UUID | str, owner_id: int) -> None:
    await asyncio.to_thread(client.remove_watch, watch_id, owner_id)


async def progress(
    scan_id: uuid.UUID | str, poll_seconds: float = client.PROGRESS_POLL_SECONDS
) -> AsyncIterator[Checkpoint]:
    """worker.client.progress as an async iterator: sleeps with asyncio between reads."""
    client.check_poll_seconds(poll_seconds)
    last: tuple[object, ...] | None = None
    while True:
        checkpoint = await status(scan_id)
        seen = client.progress_key(checkpoint)
        if seen != last:
            last = seen
            yield checkpoint
        if client.is_terminal(checkpoint):
            return
        await asyncio.sleep(poll_seconds)
