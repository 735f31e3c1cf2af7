"""The checkpoint store: the seed guide's API as protocols, one for sync and one for asyncio code.

Implementations, all held to one contract suite (tests/contract/test_checkpoint_store.py):

| flavour | PostgreSQL                | JSON files             | memory                     |
|---------|---------------------------|------------------------|----------------------------|
| sync    | `StateManager(Session)`   | `LocalCheckpointStore` | `MemoryStateManager`       |
| asyncio | `StateManager(AsyncSession)` | `LocalStateManager` | `AsyncMemoryStateManager`  |

They validate the same way, raise the same errors with the same texts (worker.errors) and
follow the same state rules. One difference is deliberate: `save_checkpoint` of a scan
nobody created is CheckpointNotFound on PostgreSQL and in memory, while the file store
creates it first (the seed guide's development example saves straight away).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Protocol

from worker.domain.checkpoint import Checkpoint
from worker.state.final_save import Cleanup


class CheckpointStore(Protocol):
    """Checkpoints of long operations, for sync code: every method returns its result."""

    def create_checkpoint(
        self,
        scan_id: uuid.UUID | str,
        user_id: int,
        operation_type: str,
        metadata: dict[str, Any] | None = None,
        total_items: int | None = None,
        *,
        total_is_lower_bound: bool = False,
    ) -> Checkpoint:
        """A new in-progress checkpoint; DuplicateScan if `scan_id` exists already."""

    def save_checkpoint(
        self,
        scan_id: uuid.UUID | str,
        cursor: str | None,
        processed_items: int,
        total_items: int | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        total_is_lower_bound: bool = False,
    ) -> Checkpoint:
        """Progress of an in-progress or paused scan; `metadata` is merged into the stored one."""

    def load_checkpoint(self, scan_id: uuid.UUID | str) -> Checkpoint | None:
        """The checkpoint of `scan_id`, or None if there is none."""

    def get_active_checkpoints(
        self, user_id: int | None = None, operation_type: str | None = None
    ) -> list[Checkpoint]:
        """In-progress and paused checkpoints, newest first, optionally of one user or operation."""

    def mark_checkpoint_completed(self, scan_id: uuid.UUID | str) -> Checkpoint:
        """Finish an active scan; InvalidTransition if it finished already."""

    def mark_checkpoint_failed(self, scan_id: uuid.UUID | str, error_message: str) -> Checkpoint:
        """Fail an active scan with a non-empty reason; InvalidTransition if it finished already."""

    def cleanup_old_checkpoints(self, days: int = 7) -> int:
        """Delete finished checkpoints untouched for `days` days; how many were deleted."""


class AsyncCheckpointStore(Protocol):
    """Checkpoints of long operations, for asyncio code: every method is awaited."""

    async def create_checkpoint(
        self,
        scan_id: uuid.UUID | str,
        user_id: int,
        operation_type: str,
        metadata: dict[str, Any] | None = None,
        total_items: int | None = None,
        *,
        total_is_lower_bound: bool = False,
    ) -> Checkpoint:
        """As CheckpointStore.create_checkpoint."""

    async def save_checkpoint(
        self,
        scan_id: uuid.UUID | str,
        cursor: str | None,
        processed_items: int,
        total_items: int | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        total_is_lower_bound: bool = False,
    ) -> Checkpoint:
        """As CheckpointStore.save_checkpoint."""

    async def load_checkpoint(self, scan_id: uuid.UUID | str) -> Checkpoint | None:
        """As CheckpointStore.load_checkpoint."""

    async def get_active_checkpoints(
        self, user_id: int | None = None, operation_type: str | None = None
    ) -> list[Checkpoint]:
        """As CheckpointStore.get_active_checkpoints."""

    async def mark_checkpoint_completed(self, scan_id: uuid.UUID | str) -> Checkpoint:
        """As CheckpointStore.mark_checkpoint_completed."""

    async def mark_checkpoint_failed(
        self, scan_id: uuid.UUID | str, error_message: str
    ) -> Checkpoint:
        """As CheckpointStore.mark_checkpoint_failed."""

    async def cleanup_old_checkpoints(self, days: int = 7) -> int:
        """As CheckpointStore.cleanup_old_checkpoints."""


class FinalSave(Protocol):
    """What every state manager adds to its store: the interval and the save on SIGTERM/SIGINT."""

    @property
    def checkpoint_interval(self) -> int:
        """How many items the caller processes between two saves."""

    def record_progress(
        self,
        scan_id: uuid.UUID | str,
        cursor: str | None,
        processed_items: int,
        total_items: int | None = None,
        *,
        total_is_lower_bound: bool = False,
    ) -> None:
        """Remember progress in memory only; the shutdown handler saves the latest."""

    def register_shutdown_handlers(
        self, scan_id: uuid.UUID | str, cleanup_callback: Cleanup | None = None
    ) -> None:
        """On SIGTERM or SIGINT: save a final checkpoint, run `cleanup_callback`, exit."""


class StateManagerProtocol(CheckpointStore, FinalSave, Protocol):
    """The seed guide's StateManager for sync code: `StateManager(Session)`, MemoryStateManager."""


class AsyncStateManagerProtocol(AsyncCheckpointStore, FinalSave, Protocol):
    """The seed guide's StateManager for asyncio code: `StateManager(AsyncSession)`,
    LocalStateManager, AsyncMemoryStateManager."""


if TYPE_CHECKING:
    # Checked by mypy only: every implementation satisfies its protocol, signatures included.
    from worker.state.local import LocalCheckpointStore, LocalStateManager
    from worker.state.manager import AsyncStateManager, SyncStateManager
    from worker.state.memory import (
        AsyncMemoryStateManager,
        MemoryCheckpointStore,
        MemoryStateManager,
    )

    def _implementations_conform(
        postgres: SyncStateManager,
        postgres_async: AsyncStateManager,
        files: LocalCheckpointStore,
        files_async: LocalStateManager,
        memory: MemoryCheckpointStore,
        memory_manager: MemoryStateManager,
        memory_async: AsyncMemoryStateManager,
    ) -> None:
        stores: list[CheckpointStore] = [postgres, files, memory, memory_manager]
        managers: list[StateManagerProtocol] = [postgres, memory_manager]
        async_managers: list[AsyncStateManagerProtocol] = [
            postgres_async,
            files_async,
            memory_async,
        ]
        del stores, managers, async_managers
