"""StateManager: the seed guide's checkpoint API on PostgreSQL, for sync and asyncio callers.

`StateManager(session)` returns a `SyncStateManager` for a `Session` and an
`AsyncStateManager` (awaitable methods) for an `AsyncSession` (and for any other object, as
the upstream module, whose StateManager was asyncio-only). Both are the one manager of
worker.state.faces over a `PostgresCheckpointStore`; the async flavour runs it through
`AsyncSession.run_sync`. Every method commits its own transaction, so a checkpoint is
durable when the call returns.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar, overload

from worker.db import AsyncSession, Session, checkpoints, retention
from worker.domain.validation import DEFAULT_CHECKPOINT_INTERVAL, DEFAULT_MAX_CONSECUTIVE_ERRORS
from worker.settings import get_settings
from worker.state.faces import (
    AsyncCheckpointManager,
    CheckpointManager,
    SyncCheckpointManager,
    save_progress,
)
from worker.state.final_save import Progress, SaveFinal
from worker.state.postgres import PostgresCheckpointStore
from worker.state.protocol import CheckpointStore

P = ParamSpec("P")
R = TypeVar("R")


class StateManager(CheckpointManager):
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
                SyncStateManager if checkpoints.is_sync_session(session) else AsyncStateManager
            )
            return object.__new__(flavour)
        return object.__new__(cls)

    def __init__(
        self,
        session: Any,
        checkpoint_interval: int = DEFAULT_CHECKPOINT_INTERVAL,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
    ) -> None:
        super().__init__(checkpoint_interval, max_consecutive_errors)
        self.session = session
        if checkpoints.is_sync_session(session):
            # The asyncio flavour makes its store per call, over the session run_sync hands it.
            self.store = PostgresCheckpointStore(session)

    def _final_saver(self) -> SaveFinal:
        bind_url = checkpoints.bind_url_of(self.session)

        def save(scan: uuid.UUID, progress: Progress) -> None:
            # A session of its own: the signal may have interrupted a transaction of ours.
            with checkpoints.final_save_session(bind_url) as session:
                save_progress(PostgresCheckpointStore(session), scan, progress)

        return save


class SyncStateManager(StateManager, SyncCheckpointManager):
    """StateManager for sync code: methods return their results directly."""

    session: Session


class AsyncStateManager(StateManager, AsyncCheckpointManager):
    """StateManager for asyncio code: every method is awaited, as in the seed guide."""

    session: AsyncSession

    async def _run(self, work: Callable[[CheckpointStore], R]) -> R:
        # The store over the sync Session that run_sync hands over, for this call only.
        return await self.session.run_sync(lambda session: work(PostgresCheckpointStore(session)))

    async def cleanup_old_checkpoints(self, days: int = 7) -> int:
        """Paced as retention.cleanup_old_checkpoints is, pausing on the event loop instead of
        blocking it: one committed batch per transaction."""
        settings = get_settings()
        plan = await self._in_transaction(retention.plan_cleanup, days)
        # Each day's drop is its own short transaction; a drop that must retry for the
        # tables' lock sleeps this thread (at most 2 s a day, once a day, in a cleanup).
        plan = await self._in_transaction(
            retention.drop_finished_days, plan, settings.cleanup_pause_ratio
        )
        deleted_total = plan.dropped
        while True:
            started = time.monotonic()
            deleted = await self._in_transaction(
                retention.delete_old_checkpoints, days, settings.cleanup_batch_size, plan
            )
            deleted_total += deleted
            if deleted < settings.cleanup_batch_size:
                break
            await asyncio.sleep((time.monotonic() - started) * settings.cleanup_pause_ratio)
        return deleted_total

    async def _in_transaction(
        self, run: Callable[Concatenate[Session, P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        return await self.session.run_sync(
            lambda session: PostgresCheckpointStore(session).in_transaction(run, *args, **kwargs)
        )
