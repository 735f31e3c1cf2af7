"""The checkpoint store: the seed guide's API as protocols, one for sync and one for asyncio code.

Implementations, all held to one contract suite (tests/contract/test_checkpoint_store.py):

| flavour | PostgreSQL                | JSON files             | memory                     |
|---------|---------------------------|------------------------|----------------------------|
| sync    | `StateManager(Session)`   | `LocalCheckpointStore` | `MemoryStateManager`       |
| asyncio | `StateManager(AsyncSession)` | `LocalStateManager` | `AsyncMemoryStateManager`  |

They validate the same way, raise the same errors with the same texts (worker.errors) and
follow the same state rules. The managers add the upstream module's error counter, pause and
emergency shutdown (ErrorCounter, written once; only the shutdown's wait differs by face). One
difference is deliberate: `save_checkpoint` of a scan
nobody created is CheckpointNotFound on PostgreSQL and in memory, while the file store
creates it first (the seed guide's development example saves straight away).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Protocol

from worker.domain.checkpoint import Checkpoint
from worker.domain.status import ScanStatus
from worker.state.error_guard import ShutdownCallback
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
        extra_data: dict[str, Any] | None = None,
    ) -> Checkpoint:
        """A new in-progress checkpoint; DuplicateScan if `scan_id` exists already.
        `extra_data` is the upstream module's name for `metadata` (give one, not both)."""

    def save_checkpoint(
        self,
        scan_id: uuid.UUID | str,
        cursor: str | None,
        processed_items: int,
        total_items: int | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        total_is_lower_bound: bool = False,
        extra_data: dict[str, Any] | None = None,
        status: ScanStatus | str | None = None,
    ) -> Checkpoint:
        """Progress of an in-progress or paused scan; `metadata` is merged into the stored one.
        `status` (upstream's keyword) moves the scan where the transition table allows, else
        InvalidTransition."""

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
        extra_data: dict[str, Any] | None = None,
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
        extra_data: dict[str, Any] | None = None,
        status: ScanStatus | str | None = None,
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


class ErrorCounter(Protocol):
    """The upstream module's error counter and pause, per manager and process
    (worker.state.error_guard); the same on both faces."""

    @property
    def max_consecutive_errors(self) -> int:
        """How many errors in a row make record_error() say "shut down"."""

    @property
    def consecutive_errors(self) -> int:
        """Errors recorded since the last reset, resume or start."""

    @property
    def is_paused(self) -> bool:
        """True from pause_operations (or an emergency shutdown) until resume_operations."""

    def record_error(self) -> bool:
        """Count one more error; True once the count reaches max_consecutive_errors."""

    def reset_error_counter(self) -> None:
        """Back to 0 errors."""

    def pause_operations(self) -> None:
        """Set is_paused; pausing twice is harmless."""

    def resume_operations(self) -> None:
        """Clear is_paused and reset the error counter."""

    def set_shutdown_callback(self, callback: ShutdownCallback | None) -> None:
        """A sync or async callable taking the reason; None clears it; InvalidInput if the
        value is not callable."""


class EmergencyShutdown(ErrorCounter, Protocol):
    """ErrorCounter for sync code: the shutdown returns once the callback has finished."""

    def trigger_emergency_shutdown(self, reason: str) -> None:
        """Pause, then call the callback once with `reason` (an async one runs to its end);
        an error from the callback is logged, never raised."""


class AsyncEmergencyShutdown(ErrorCounter, Protocol):
    """ErrorCounter for asyncio code: the shutdown is awaited."""

    async def trigger_emergency_shutdown(self, reason: str) -> None:
        """As EmergencyShutdown.trigger_emergency_shutdown, awaiting an awaitable result."""


class StateManagerProtocol(CheckpointStore, FinalSave, EmergencyShutdown, Protocol):
    """The seed guide's StateManager for sync code: `StateManager(Session)`, MemoryStateManager."""


class AsyncStateManagerProtocol(AsyncCheckpointStore, FinalSave, AsyncEmergencyShutdown, Protocol):
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
