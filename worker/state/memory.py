"""Checkpoints in memory: the StateManager API for tests, the package's and apps' own.

Same validation, errors, texts and state rules as the PostgreSQL store (held to one contract
suite); nothing outlives the process. `MemoryStateManager` is the sync flavour and
`AsyncMemoryStateManager` the awaitable one, as `StateManager(Session)` and
`StateManager(AsyncSession)`; both keep their rows in a `MemoryCheckpointStore`, which two
managers may share. A final save on SIGTERM/SIGINT writes into that memory.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager

from worker.domain import validation as v
from worker.domain.checkpoint import Checkpoint
from worker.domain.validation import DEFAULT_CHECKPOINT_INTERVAL
from worker.state.final_save import FinalCheckpoint, Progress, SaveFinal
from worker.state.records import CheckpointRecords, Metadata, ScanId


class MemoryCheckpointStore(CheckpointRecords):
    """Checkpoints in a dict; safe across threads, sync methods, DB semantics."""

    def __init__(self) -> None:
        # Public so that a test can look at, or arrange, what is stored (e.g. age a row).
        self.checkpoints: dict[uuid.UUID, Checkpoint] = {}
        # Re-entrant: a save may create, and a signal handler may save mid-change.
        self._lock = threading.RLock()

    def _read(self, scan: uuid.UUID) -> Checkpoint | None:
        return self.checkpoints.get(scan)

    def _write(self, checkpoint: Checkpoint) -> None:
        self.checkpoints[checkpoint.scan_id] = checkpoint

    def _delete(self, scan: uuid.UUID) -> None:
        del self.checkpoints[scan]

    def _read_all(self) -> Iterator[Checkpoint]:
        with self._lock:
            return iter(list(self.checkpoints.values()))

    def _locked(self) -> AbstractContextManager[None]:
        return _Held(self._lock)


class _Held(AbstractContextManager[None]):
    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


class _MemoryManager(FinalCheckpoint):
    """What both flavours share: the store, the interval and the final save."""

    def __init__(
        self,
        store: MemoryCheckpointStore | None = None,
        checkpoint_interval: int = DEFAULT_CHECKPOINT_INTERVAL,
    ) -> None:
        super().__init__()
        self.checkpoint_interval = v.checkpoint_interval_of(checkpoint_interval)
        self.store = MemoryCheckpointStore() if store is None else store

    def _final_saver(self) -> SaveFinal:
        def save(scan: uuid.UUID, progress: Progress) -> None:
            self.store.save_checkpoint(
                scan,
                progress.cursor,
                progress.processed_items,
                progress.total_items,
                total_is_lower_bound=progress.total_is_lower_bound,
            )

        return save


class MemoryStateManager(_MemoryManager):
    """The seed guide's StateManager for sync code, in memory."""

    def create_checkpoint(
        self,
        scan_id: ScanId,
        user_id: int,
        operation_type: str,
        metadata: Metadata = None,
        total_items: int | None = None,
        *,
        total_is_lower_bound: bool = False,
    ) -> Checkpoint:
        return self._remember(
            self.store.create_checkpoint(
                scan_id,
                user_id,
                operation_type,
                metadata,
                total_items,
                total_is_lower_bound=total_is_lower_bound,
            )
        )

    def save_checkpoint(
        self,
        scan_id: ScanId,
        cursor: str | None,
        processed_items: int,
        total_items: int | None = None,
        metadata: Metadata = None,
        *,
        total_is_lower_bound: bool = False,
    ) -> Checkpoint:
        return self._remember(
            self.store.save_checkpoint(
                scan_id,
                cursor,
                processed_items,
                total_items,
                metadata,
                total_is_lower_bound=total_is_lower_bound,
            )
        )

    def load_checkpoint(self, scan_id: ScanId) -> Checkpoint | None:
        return self.store.load_checkpoint(scan_id)

    def get_active_checkpoints(
        self, user_id: int | None = None, operation_type: str | None = None
    ) -> list[Checkpoint]:
        return self.store.get_active_checkpoints(user_id, operation_type)

    def mark_checkpoint_completed(self, scan_id: ScanId) -> Checkpoint:
        return self._finished(self.store.mark_checkpoint_completed(scan_id))

    def mark_checkpoint_failed(self, scan_id: ScanId, error_message: str) -> Checkpoint:
        return self._finished(self.store.mark_checkpoint_failed(scan_id, error_message))

    def cleanup_old_checkpoints(self, days: int = 7) -> int:
        return self.store.cleanup_old_checkpoints(days)


class AsyncMemoryStateManager(_MemoryManager):
    """The seed guide's StateManager for asyncio code, in memory: every method is awaited."""

    async def create_checkpoint(
        self,
        scan_id: ScanId,
        user_id: int,
        operation_type: str,
        metadata: Metadata = None,
        total_items: int | None = None,
        *,
        total_is_lower_bound: bool = False,
    ) -> Checkpoint:
        return self._remember(
            self.store.create_checkpoint(
                scan_id,
                user_id,
                operation_type,
                metadata,
                total_items,
                total_is_lower_bound=total_is_lower_bound,
            )
        )

    async def save_checkpoint(
        self,
        scan_id: ScanId,
        cursor: str | None,
        processed_items: int,
        total_items: int | None = None,
        metadata: Metadata = None,
        *,
        total_is_lower_bound: bool = False,
    ) -> Checkpoint:
        return self._remember(
            self.store.save_checkpoint(
                scan_id,
                cursor,
                processed_items,
                total_items,
                metadata,
                total_is_lower_bound=total_is_lower_bound,
            )
        )

    async def load_checkpoint(self, scan_id: ScanId) -> Checkpoint | None:
        return self.store.load_checkpoint(scan_id)

    async def get_active_checkpoints(
        self, user_id: int | None = None, operation_type: str | None = None
    ) -> list[Checkpoint]:
        return self.store.get_active_checkpoints(user_id, operation_type)

    async def mark_checkpoint_completed(self, scan_id: ScanId) -> Checkpoint:
        return self._finished(self.store.mark_checkpoint_completed(scan_id))

    async def mark_checkpoint_failed(self, scan_id: ScanId, error_message: str) -> Checkpoint:
        return self._finished(self.store.mark_checkpoint_failed(scan_id, error_message))

    async def cleanup_old_checkpoints(self, days: int = 7) -> int:
        return self.store.cleanup_old_checkpoints(days)
