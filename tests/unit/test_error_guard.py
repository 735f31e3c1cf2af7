"""The emergency shutdown's wait on a sync manager called from asyncio code, where this
thread's event loop is busy running the caller (the contract suite covers the rest)."""

from __future__ import annotations

import asyncio
import threading

from worker.state.memory import MemoryStateManager


def test_a_sync_manager_in_a_coroutine_runs_an_async_callback_to_its_end() -> None:
    # Given a sync manager used from a coroutine, with an async callback
    manager, calls = MemoryStateManager(), []

    async def notify(reason: str) -> None:
        await asyncio.sleep(0)
        calls.append((reason, threading.current_thread() is threading.main_thread()))

    manager.set_shutdown_callback(notify)

    async def program() -> list[tuple[str, bool]]:
        manager.trigger_emergency_shutdown("from a coroutine")
        # Then the callback has finished when the call returns, on a loop of its own
        return list(calls)

    assert asyncio.run(program()) == [("from a coroutine", False)]
    assert manager.is_paused is True


def test_a_sync_manager_outside_asyncio_runs_an_async_callback_in_this_thread() -> None:
    manager, calls = MemoryStateManager(), []

    async def notify(reason: str) -> None:
        calls.append((reason, threading.current_thread() is threading.main_thread()))

    manager.set_shutdown_callback(notify)
    manager.trigger_emergency_shutdown("plain")
    assert calls == [("plain", True)]
