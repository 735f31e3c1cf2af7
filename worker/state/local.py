"""File-based checkpoints for development: the DB StateManager's API, one JSON file per scan.

`LocalCheckpointStore` mirrors the validation, errors and state rules of
`worker.db.checkpoints` in plain methods; `LocalStateManager` is the seed guide's awaitable
API on top. Files are replaced atomically and every change holds an exclusive lock on
`<state_dir>/.lock`, so each read-modify-write is a guarded update across processes.
"""

from __future__ import annotations

import fcntl
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from worker.domain import progress as scan_total
from worker.domain import validation as v
from worker.domain.checkpoint import Checkpoint
from worker.domain.status import ACTIVE_STATUSES, TERMINAL_STATUSES, ScanStatus
from worker.domain.validation import DEFAULT_CHECKPOINT_INTERVAL
from worker.errors import (
    CheckpointNotFound,
    DuplicateScan,
    InvalidInput,
    InvalidTransition,
)
from worker.state.file_format import (
    TEMP_SUFFIX,
    fsync_directory,
    make_private_directory,
    open_private,
    read_checkpoint_file,
    write_checkpoint_file,
)
from worker.state.final_save import FinalCheckpoint, Progress, SaveFinal

LOCK_FILE_NAME = ".lock"
# What a save of a scan nobody created records: the file store is for development, where the
# seed guide saves straight away. Same as a CLI scan started for nobody.
DEFAULT_LOCAL_USER_ID = 0
DEFAULT_LOCAL_OPERATION_TYPE = "market_scan"
ScanId: TypeAlias = uuid.UUID | str
Metadata: TypeAlias = dict[str, Any] | None
T = TypeVar("T")


class LocalCheckpointStore:
    """Checkpoints as `<state_dir>/<scan_id>.json` files; sync methods, DB semantics."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir)
        make_private_directory(self.state_dir)
        # flock keeps other processes out; the RLock keeps other threads out and lets a signal
        # handler that interrupted a change in this very thread go ahead with its own.
        self._thread_lock = threading.RLock()
        self._lock_depth = 0

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
        """Write a new in-progress checkpoint; a scan_id that exists already is DuplicateScan."""
        scan, now = v.scan_id_of(scan_id), _now()
        created = Checkpoint(
            scan_id=scan,
            user_id=v.user_id_of(user_id),
            operation_type=v.operation_type_of(operation_type),
            metadata=v.metadata_of(metadata),
            total_items=v.count_of("total_items", total_items, optional=True),
            total_is_lower_bound=v.lower_bound_of(total_is_lower_bound),
            cursor=None,
            processed_items=0,
            status=ScanStatus.IN_PROGRESS,
            timestamp=now,
            created_at=now,
            updated_at=now,
        )
        with self._locked():
            if self._path(scan).exists():
                raise DuplicateScan(f"a checkpoint with scan_id {scan} already exists")
            write_checkpoint_file(self._path(created.scan_id), created)
        return created

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
        """Record progress of an active scan; `metadata` is merged into the stored object.

        A scan with no checkpoint yet is created first, in progress, for user
        DEFAULT_LOCAL_USER_ID and operation DEFAULT_LOCAL_OPERATION_TYPE. The count may
        pass the total only if the total is a lower bound, as in the database store.
        """
        scan = v.scan_id_of(scan_id)
        lower_bound = v.lower_bound_of(total_is_lower_bound)
        processed = v.count_of("processed_items", processed_items)
        assert processed is not None
        total = v.count_of("total_items", total_items, optional=True)
        checked_cursor = v.cursor_of(cursor)
        patch = None if metadata is None else v.metadata_of(metadata)
        with self._locked():
            if not self._path(scan).exists():
                v.counts_of(processed, total, lower_bound)  # refused before anything is written
                self.create_checkpoint(scan, DEFAULT_LOCAL_USER_ID, DEFAULT_LOCAL_OPERATION_TYPE)
            current = self._require_active(scan, "take checkpoints")
            lower_bound = lower_bound or current.total_is_lower_bound
            reported = current.total_items if total is None else total
            v.counts_of(processed, reported, lower_bound)
            merged, lower_bound = scan_total.merged_total(reported, processed, lower_bound)
            now = _now()
            saved = replace(
                current,
                cursor=checked_cursor,
                processed_items=processed,
                total_items=merged,
                total_is_lower_bound=lower_bound,
                # Merging can grow metadata past the bound even when each part is within it.
                metadata=current.metadata
                if patch is None
                else v.metadata_of({**current.metadata, **patch}),
                timestamp=now,
                updated_at=now,
            )
            write_checkpoint_file(self._path(saved.scan_id), saved)
        return saved

    def load_checkpoint(self, scan_id: ScanId) -> Checkpoint | None:
        """The checkpoint of `scan_id`, or None if there is none."""
        return read_checkpoint_file(self._path(v.scan_id_of(scan_id)))

    def get_active_checkpoints(
        self, user_id: int | None = None, operation_type: str | None = None
    ) -> list[Checkpoint]:
        """In-progress and paused checkpoints, newest first, optionally of one user or operation."""
        user = None if user_id is None else v.user_id_of(user_id)
        operation = None if operation_type is None else v.operation_type_of(operation_type)
        active = [
            checkpoint
            for checkpoint in self._read_all()
            if checkpoint.status in ACTIVE_STATUSES
            and user in (None, checkpoint.user_id)
            and operation in (None, checkpoint.operation_type)
        ]
        # The DB breaks timestamp ties by row id, that is by creation order.
        return sorted(
            active, key=lambda c: (c.timestamp, c.created_at or c.timestamp), reverse=True
        )

    def mark_checkpoint_completed(self, scan_id: ScanId) -> Checkpoint:
        return self._finish(v.scan_id_of(scan_id), ScanStatus.COMPLETED, None)

    def mark_checkpoint_failed(self, scan_id: ScanId, error_message: str) -> Checkpoint:
        if not isinstance(error_message, str) or not error_message.strip():
            raise InvalidInput(f"error_message must be a non-empty string, got {error_message!r}")
        return self._finish(v.scan_id_of(scan_id), ScanStatus.FAILED, error_message)

    def cleanup_old_checkpoints(self, days: int = 7) -> int:
        """Delete terminal checkpoints untouched for `days` days, and temp files left by crashes."""
        cutoff = _now() - timedelta(days=v.days_of(days))
        deleted = 0
        with self._locked():
            for checkpoint in self._read_all():
                updated_at = checkpoint.updated_at or checkpoint.timestamp
                if checkpoint.status in TERMINAL_STATUSES and updated_at < cutoff:
                    self._path(checkpoint.scan_id).unlink()
                    deleted += 1
            # Every write holds the lock, so a temp file seen under it belongs to a dead writer.
            for temp in self.state_dir.glob(f".*{TEMP_SUFFIX}"):
                temp.unlink()
            fsync_directory(self.state_dir)
        return deleted

    def _finish(self, scan: uuid.UUID, status: ScanStatus, error_message: str | None) -> Checkpoint:
        with self._locked():
            current = self._require_active(scan, f"become {status.value}")
            finished = replace(
                current,
                status=status,
                error_message=error_message,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=_now(),
            )
            write_checkpoint_file(self._path(finished.scan_id), finished)
        return finished

    def _require_active(self, scan: uuid.UUID, change: str) -> Checkpoint:
        checkpoint = read_checkpoint_file(self._path(scan))
        if checkpoint is None:
            raise CheckpointNotFound(f"no checkpoint with scan_id {scan}")
        if checkpoint.status not in ACTIVE_STATUSES:
            raise InvalidTransition(
                f"scan {scan} is {checkpoint.status}; only an in_progress or paused scan can "
                f"{change}"
            )
        return checkpoint

    def _path(self, scan: uuid.UUID) -> Path:
        return self.state_dir / f"{scan}.json"

    def _read_all(self) -> Iterator[Checkpoint]:
        for path in sorted(self.state_dir.glob("[!.]*.json")):
            checkpoint = read_checkpoint_file(path)
            if checkpoint is not None:  # None: a cleanup deleted it since the listing
                yield checkpoint

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            self._lock_depth += 1
            try:
                if self._lock_depth > 1:
                    yield
                    return
                lock_fd = open_private(self.state_dir / LOCK_FILE_NAME, os.O_CREAT | os.O_WRONLY)
                with os.fdopen(lock_fd, "wb") as lock_file:
                    fcntl.flock(lock_file, fcntl.LOCK_EX)  # released when the file closes
                    yield
            finally:
                self._lock_depth -= 1


class LocalStateManager(FinalCheckpoint):
    """The seed guide's awaitable StateManager API over a `LocalCheckpointStore`."""

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        checkpoint_interval: int = DEFAULT_CHECKPOINT_INTERVAL,
    ) -> None:
        super().__init__()
        self.checkpoint_interval = v.checkpoint_interval_of(checkpoint_interval)
        self.store = LocalCheckpointStore(state_dir)

    # A local write takes milliseconds, so the coroutines run it inline rather than in a thread.
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


def _now() -> datetime:
    return datetime.now(UTC)
