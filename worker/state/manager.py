"""StateManager: the seed guide's checkpoint API on PostgreSQL, for sync and asyncio callers.

`StateManager(session)` returns a `SyncStateManager` for a `Session` and an
`AsyncStateManager` (awaitable methods) for an `AsyncSession` (and for any other object, as
the upstream module, whose StateManager was asyncio-only). Both run the same functions
of `worker.db.checkpoints`; the async flavour through `AsyncSession.run_sync`. Every
method commits its own transaction, so a checkpoint is durable when the call returns.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar, overload

from worker.db import AsyncSession, Session, retention
from worker.db import checkpoints as store
from worker.domain.checkpoint import Checkpoint
from worker.domain.status import ScanStatus
from worker.domain.validation import (
    DEFAULT_CHECKPOINT_INTERVAL,
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    checkpoint_interval_of,
)
from worker.settings import get_settings
from worker.state.error_guard import AsyncErrorGuard, ErrorGuard, SyncErrorGuard
from worker.state.final_save import FinalCheckpoint, Progress, SaveFinal

T = TypeVar("T")


class StateManager(FinalCheckpoint, ErrorGuard):
    """Checkpoints of long operations; pick the flavour by the session you pass."""

    @overload
    def __new__(
        cls,
        session: AsyncSession,
        checkpoint_interval: int = ...,
        max_consecutive_errors: int = ...,
    ) -> AsyncStateManager: ...
    @overload
    def __new__(
        cls, session: Session, checkpoint_interval: int = ..., max_consecutive_errors: int = ...
    ) -> SyncStateManager: ...
    def __new__(
        cls,
        session: Session | AsyncSession,
        checkpoint_interval: int = DEFAULT_CHECKPOINT_INTERVAL,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
    ) -> StateManager:
        if cls is StateManager:
            flavour: type[StateManager] = (
                SyncStateManager if store.is_sync_session(session) else AsyncStateManager
            )
            return object.__new__(flavour)
        return object.__new__(cls)

    def __init__(
        self,
        session: Any,
        checkpoint_interval: int = DEFAULT_CHECKPOINT_INTERVAL,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
    ) -> None:
        super().__init__()
        self.checkpoint_interval = checkpoint_interval_of(checkpoint_interval)
        self._init_error_guard(max_consecutive_errors)
        self.session = session

    def _final_saver(self) -> SaveFinal:
        bind_url = store.bind_url_of(self.session)

        def save(scan: uuid.UUID, progress: Progress) -> None:
            with store.final_save_session(bind_url) as session:
                store.save_checkpoint(
                    session,
                    scan,
                    progress.cursor,
                    progress.processed_items,
                    progress.total_items,
                    total_is_lower_bound=progress.total_is_lower_bound,
                )
                session.commit()

        return save


class SyncStateManager(StateManager, SyncErrorGuard):
    """StateManager for sync code: methods return their results directly."""

    session: Session

    def _run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        try:
            result = fn(self.session, *args, **kwargs)
            self.session.commit()
        except BaseException:
            self.session.rollback()
            raise
        return result

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
        return self._remember(
            self._run(
                store.create_checkpoint,
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
        return self._saved(
            self._run(
                store.save_checkpoint,
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

    def load_checkpoint(self, scan_id: uuid.UUID | str) -> Checkpoint | None:
        return self._run(store.load_checkpoint, scan_id)

    def get_active_checkpoints(
        self, user_id: int | None = None, operation_type: str | None = None
    ) -> list[Checkpoint]:
        return self._run(store.get_active_checkpoints, user_id, operation_type)

    def mark_checkpoint_completed(self, scan_id: uuid.UUID | str) -> Checkpoint:
        return self._finished(self._run(store.mark_checkpoint_completed, scan_id))

    def mark_checkpoint_failed(self, scan_id: uuid.UUID | str, error_message: str) -> Checkpoint:
        return self._finished(self._run(store.mark_checkpoint_failed, scan_id, error_message))

    def cleanup_old_checkpoints(self, days: int = 7) -> int:
        settings = get_settings()
        return self._run(
            retention.cleanup_old_checkpoints,
            days,
            settings.cleanup_batch_size,
            settings.cleanup_pause_ratio,
        )


class AsyncStateManager(StateManager, AsyncErrorGuard):
    """StateManager for asyncio code: every method is awaited, as in the seed guide."""

    session: AsyncSession

    async def _run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        try:
            result = await self.session.run_sync(fn, *args, **kwargs)
            await self.session.commit()
        except BaseException:
            await self.session.rollback()
            raise
        return result

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
        return self._remember(
            await self._run(
                store.create_checkpoint,
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
        return self._saved(
            await self._run(
                store.save_checkpoint,
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

    async def load_checkpoint(self, scan_id: uuid.UUID | str) -> Checkpoint | None:
        return await self._run(store.load_checkpoint, scan_id)

    async def get_active_checkpoints(
        self, user_id: int | None = None, operation_type: str | None = None
    ) -> list[Checkpoint]:
        return await self._run(store.get_active_checkpoints, user_id, operation_type)

    async def mark_checkpoint_completed(self, scan_id: uuid.UUID | str) -> Checkpoint:
        return self._finished(await self._run(store.mark_checkpoint_completed, scan_id))

    async def mark_checkpoint_failed(
        self, scan_id: uuid.UUID | str, error_message: str
    ) -> Checkpoint:
        return self._finished(await self._run(store.mark_checkpoint_failed, scan_id, error_message))

    async def cleanup_old_checkpoints(self, days: int = 7) -> int:
        """Paced as retention.cleanup_old_checkpoints is, pausing on the event loop instead of
        blocking it: one committed batch per `_run`."""
        settings = get_settings()
        plan = await self._run(retention.plan_cleanup, days)
        # Each day's drop is its own short transaction; a drop that must retry for the
        # tables' lock sleeps this thread (at most 2 s a day, once a day, in a cleanup).
        plan = await self._run(retention.drop_finished_days, plan, settings.cleanup_pause_ratio)
        deleted_total = plan.dropped
        while True:
            started = time.monotonic()
            deleted = await self._run(
                retention.delete_old_checkpoints, days, settings.cleanup_batch_size, plan
            )
            deleted_total += deleted
            if deleted < settings.cleanup_batch_size:
                break
            await asyncio.sleep((time.monotonic() - started) * settings.cleanup_pause_ratio)
        return deleted_total
