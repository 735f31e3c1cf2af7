"""Checked by mypy only: every store and manager satisfies its protocol, signatures included.

It sits above the implementations, which sit above worker.state.protocol, so the check closes
no import circle; nothing imports it, and it does nothing at run time.
"""

from __future__ import annotations

from worker.state.local import LocalCheckpointStore, LocalStateManager
from worker.state.manager import AsyncStateManager, SyncStateManager
from worker.state.memory import AsyncMemoryStateManager, MemoryCheckpointStore, MemoryStateManager
from worker.state.postgres import PostgresCheckpointStore
from worker.state.protocol import (
    AsyncStateManagerProtocol,
    CheckpointStore,
    StateManagerProtocol,
)


def _implementations_conform(
    rows: PostgresCheckpointStore,
    postgres: SyncStateManager,
    postgres_async: AsyncStateManager,
    files: LocalCheckpointStore,
    files_async: LocalStateManager,
    memory: MemoryCheckpointStore,
    memory_manager: MemoryStateManager,
    memory_async: AsyncMemoryStateManager,
) -> None:
    stores: list[CheckpointStore] = [rows, postgres, files, memory, memory_manager]
    managers: list[StateManagerProtocol] = [postgres, memory_manager]
    async_managers: list[AsyncStateManagerProtocol] = [postgres_async, files_async, memory_async]
    del stores, managers, async_managers
