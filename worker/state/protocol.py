"""The checkpoint store: the seed guide's API as one protocol, and the managers' protocols.

Implementations, all held to one contract suite (tests/contract/test_checkpoint_store.py):

| store                      | sync manager              | asyncio manager              |
|----------------------------|---------------------------|------------------------------|
| `PostgresCheckpointStore`  | `StateManager(Session)`   | `StateManager(AsyncSession)` |
| `LocalCheckpointStore`     |                           | `LocalStateManager`          |
| `MemoryCheckpointStore`    | `MemoryStateManager`      | `AsyncMemoryStateManager`    |

They validate the same way, raise the same errors with the same texts (worker.errors) and
follow the same state rules. Every manager is one manager over its store
(worker.state.faces): the sync face calls the store, the asyncio face awaits the same call,
and both add the upstream module's error counter, pause and emergency shutdown (ErrorCounter;
only the shutdown's wait differs by face). One difference is deliberate: `save_checkpoint`
of a scan nobody created is CheckpointNotFound on PostgreSQL and in memory, while the file
store creates it first (the seed guide's development example saves straight away).

Each method's parameters and text are written once, on worker.state.records.CheckpointRecords;
the members below take them (worker.state.signatures) and say what each answers, which mypy
checks too, so every store and manager is held to that one signature.
"""

from __future__ import annotations

from typing import Protocol

from worker.domain.checkpoint import Checkpoint
from worker.state.error_guard import ShutdownCallback
from worker.state.final_save import FinalCheckpoint
from worker.state.records import CheckpointRecords
from worker.state.signatures import awaited_as, same_as


class CheckpointStore(Protocol):
    """Checkpoints of long operations, for sync code: every method returns its result."""

    @same_as(CheckpointRecords.create_checkpoint)
    def create_checkpoint(self) -> Checkpoint: ...

    @same_as(CheckpointRecords.save_checkpoint)
    def save_checkpoint(self) -> Checkpoint: ...

    @same_as(CheckpointRecords.load_checkpoint)
    def load_checkpoint(self) -> Checkpoint | None: ...

    @same_as(CheckpointRecords.get_active_checkpoints)
    def get_active_checkpoints(self) -> list[Checkpoint]: ...

    @same_as(CheckpointRecords.mark_checkpoint_completed)
    def mark_checkpoint_completed(self) -> Checkpoint: ...

    @same_as(CheckpointRecords.mark_checkpoint_failed)
    def mark_checkpoint_failed(self) -> Checkpoint: ...

    @same_as(CheckpointRecords.cleanup_old_checkpoints)
    def cleanup_old_checkpoints(self) -> int: ...


class AsyncCheckpointStore(Protocol):
    """CheckpointStore for asyncio code: the same methods, every one awaited."""

    @awaited_as(CheckpointStore.create_checkpoint)
    async def create_checkpoint(self) -> Checkpoint: ...

    @awaited_as(CheckpointStore.save_checkpoint)
    async def save_checkpoint(self) -> Checkpoint: ...

    @awaited_as(CheckpointStore.load_checkpoint)
    async def load_checkpoint(self) -> Checkpoint | None: ...

    @awaited_as(CheckpointStore.get_active_checkpoints)
    async def get_active_checkpoints(self) -> list[Checkpoint]: ...

    @awaited_as(CheckpointStore.mark_checkpoint_completed)
    async def mark_checkpoint_completed(self) -> Checkpoint: ...

    @awaited_as(CheckpointStore.mark_checkpoint_failed)
    async def mark_checkpoint_failed(self) -> Checkpoint: ...

    @awaited_as(CheckpointStore.cleanup_old_checkpoints)
    async def cleanup_old_checkpoints(self) -> int: ...


class FinalSave(Protocol):
    """What every state manager adds to its store: the interval and the save on SIGTERM/SIGINT
    (worker.state.final_save)."""

    @property
    def checkpoint_interval(self) -> int:
        """How many items the caller processes between two saves."""

    @same_as(FinalCheckpoint.record_progress)
    def record_progress(self) -> None: ...

    @same_as(FinalCheckpoint.register_shutdown_handlers)
    def register_shutdown_handlers(self) -> None: ...


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
