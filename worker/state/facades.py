"""The seed guide's manager API over a records store (worker.state.records), written once:
the sync flavour (MemoryStateManager) and the awaitable one (LocalStateManager,
AsyncMemoryStateManager) differ only in where their store keeps the rows.
"""

from __future__ import annotations

import uuid

from worker.domain import validation as v
from worker.domain.checkpoint import Checkpoint
from worker.domain.status import ScanStatus
from worker.state.error_guard import AsyncErrorGuard, ErrorGuard, SyncErrorGuard
from worker.state.final_save import FinalCheckpoint, Progress, SaveFinal
from worker.state.records import CheckpointRecords, Metadata, ScanId


class RecordsManager(FinalCheckpoint, ErrorGuard):
    """The seed guide's manager over a CheckpointRecords store: its checkpoint interval,
    a final save on SIGTERM/SIGINT that writes into the same store, and the upstream
    module's error counter, pause and emergency shutdown."""

    def __init__(
        self,
        store: CheckpointRecords,
        checkpoint_interval: int,
        max_consecutive_errors: int = v.DEFAULT_MAX_CONSECUTIVE_ERRORS,
    ) -> None:
        super().__init__()
        self.checkpoint_interval = v.checkpoint_interval_of(checkpoint_interval)
        self._init_error_guard(max_consecutive_errors)
        self.store = store

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


class SyncRecordsManager(RecordsManager, SyncErrorGuard):
    """The seed guide's StateManager API for sync code, over a records store."""

    def create_checkpoint(
        self,
        scan_id: ScanId,
        user_id: int,
        operation_type: str,
        metadata: Metadata = None,
        total_items: int | None = None,
        *,
        total_is_lower_bound: bool = False,
        extra_data: Metadata = None,
    ) -> Checkpoint:
        return self._remember(
            self.store.create_checkpoint(
                scan_id,
                user_id,
                operation_type,
                metadata,
                total_items,
                total_is_lower_bound=total_is_lower_bound,
                extra_data=extra_data,
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
        extra_data: Metadata = None,
        status: ScanStatus | str | None = None,
    ) -> Checkpoint:
        return self._saved(
            self.store.save_checkpoint(
                scan_id,
                cursor,
                processed_items,
                total_items,
                metadata,
                total_is_lower_bound=total_is_lower_bound,
                extra_data=extra_data,
                status=status,
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


class AsyncRecordsManager(RecordsManager, AsyncErrorGuard):
    """The seed guide's StateManager API for asyncio code, over a records store: every
    method is awaited. The stores work in memory or on local files, in milliseconds, so the
    coroutines run them inline rather than in a thread."""

    async def create_checkpoint(
        self,
        scan_id: ScanId,
        user_id: int,
        operation_type: str,
        metadata: Metadata = None,
        total_items: int | None = None,
        *,
        total_is_lower_bound: bool = False,
        extra_data: Metadata = None,
    ) -> Checkpoint:
        return self._remember(
            self.store.create_checkpoint(
                scan_id,
                user_id,
                operation_type,
                metadata,
                total_items,
                total_is_lower_bound=total_is_lower_bound,
                extra_data=extra_data,
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
        extra_data: Metadata = None,
        status: ScanStatus | str | None = None,
    ) -> Checkpoint:
        return self._saved(
            self.store.save_checkpoint(
                scan_id,
                cursor,
                processed_items,
                total_items,
                metadata,
                total_is_lower_bound=total_is_lower_bound,
                extra_data=extra_data,
                status=status,
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
