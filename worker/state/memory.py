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

from worker.domain.checkpoint import Checkpoint
from worker.domain.validation import DEFAULT_CHECKPOINT_INTERVAL, DEFAULT_MAX_CONSECUTIVE_ERRORS
from worker.state.faces import AsyncCheckpointManager, CheckpointManager, SyncCheckpointManager
from worker.state.records import CheckpointRecords


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


class _InMemory(CheckpointManager):
    """Both memory managers' store: the one given, which other managers may share, or a new one."""

    store: MemoryCheckpointStore

    def __init__(
        self,
        store: MemoryCheckpointStore | None = None,
        checkpoint_interval: int = DEFAULT_CHECKPOINT_INTERVAL,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
    ) -> None:
        super().__init__(checkpoint_interval, max_consecutive_errors)
        self.store = MemoryCheckpointStore() if store is None else store


class MemoryStateManager(_InMemory, SyncCheckpointManager):
    """The seed guide's StateManager for sync code, in memory."""


class AsyncMemoryStateManager(_InMemory, AsyncCheckpointManager):
    """The seed guide's StateManager for asyncio code, in memory: every method is awaited."""
