"""The checkpoint store's rules over whole Checkpoint values, shared by files and memory.

`CheckpointRecords` validates, checks the state rules and raises the errors of
`worker.db.checkpoints`, with its texts; a subclass says only where the values live (read,
write, delete, list) and how a read-modify-write keeps other writers out. The JSON-file store
and the memory store are such subclasses, so the two cannot drift apart.

Its public methods are where the seed API's signatures and texts are written, once: the store
protocol (worker.state.protocol) and every manager's two faces (worker.state.faces) take
theirs from here, and mypy holds the PostgreSQL store to them.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

from models.status import ACTIVE_STATUSES, TERMINAL_STATUSES, ScanStatus
from worker.domain import progress as scan_total
from worker.domain import validation
from worker.domain.checkpoint import Checkpoint
from worker.domain.status import change_of, save_sources_of
from worker.errors import CheckpointNotFound, DuplicateScan, InvalidInput, InvalidTransition

ScanId: TypeAlias = uuid.UUID | str
Metadata: TypeAlias = dict[str, Any] | None
# What a save of a scan nobody created records, in a store that creates on save.
DEFAULT_USER_ID = 0
DEFAULT_OPERATION_TYPE = "market_scan"


class CheckpointRecords(ABC):
    """The seed guide's checkpoint API, sync, over any place that keeps Checkpoint values."""

    # True: a save of an unknown scan creates it first (the file store, for the seed's
    # development example); False: CheckpointNotFound, as on PostgreSQL.
    creates_on_save = False

    @abstractmethod
    def _read(self, scan: uuid.UUID) -> Checkpoint | None: ...

    @abstractmethod
    def _write(self, checkpoint: Checkpoint) -> None: ...

    @abstractmethod
    def _delete(self, scan: uuid.UUID) -> None: ...

    @abstractmethod
    def _read_all(self) -> Iterator[Checkpoint]: ...

    @abstractmethod
    def _locked(self) -> AbstractContextManager[None]:
        """Keeps other writers out of a read-modify-write; re-entrant in one thread."""

    def _exists(self, scan: uuid.UUID) -> bool:
        return self._read(scan) is not None

    def _now(self) -> datetime:
        return datetime.now(UTC)

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
        """A new in-progress checkpoint; DuplicateScan if `scan_id` exists already.
        `extra_data` is the upstream module's name for `metadata` (give one, not both)."""
        scan, now = validation.scan_id_of(scan_id), self._now()
        created = Checkpoint(
            scan_id=scan,
            user_id=validation.user_id_of(user_id),
            operation_type=validation.operation_type_of(operation_type),
            metadata=validation.metadata_patch_of(metadata, extra_data) or {},
            total_items=validation.count_of("total_items", total_items, optional=True),
            total_is_lower_bound=validation.lower_bound_of(total_is_lower_bound),
            cursor=None,
            processed_items=0,
            status=ScanStatus.IN_PROGRESS,
            timestamp=now,
            created_at=now,
            updated_at=now,
        )
        with self._locked():
            if self._exists(scan):
                raise DuplicateScan.of_scan(scan)
            self._write(created)
        return created

    def save_checkpoint(
        self,
        scan_id: ScanId,
        cursor: str | None = None,
        processed_items: int = 0,
        total_items: int | None = None,
        metadata: Metadata = None,
        *,
        total_is_lower_bound: bool = False,
        extra_data: Metadata = None,
        status: ScanStatus | str | None = None,
    ) -> Checkpoint:
        """Progress of an in-progress or paused scan; `metadata` is merged into the stored one.

        A None cursor is the first page, and a save that names neither cursor nor count saves
        None and 0, as upstream's does. The count may pass the total only if the total is a
        lower bound. `status` (upstream's keyword) moves the scan where the transition table
        allows, else InvalidTransition; `extra_data` is upstream's name for `metadata`. A store
        that `creates_on_save` (the files) first creates a scan it does not know, in progress,
        for DEFAULT_USER_ID and DEFAULT_OPERATION_TYPE; the others raise CheckpointNotFound.
        """
        scan = validation.scan_id_of(scan_id)
        lower_bound = validation.lower_bound_of(total_is_lower_bound)
        processed = validation.count_of("processed_items", processed_items)
        assert processed is not None
        total = validation.count_of("total_items", total_items, optional=True)
        checked_cursor = validation.cursor_of(cursor)
        patch = validation.metadata_patch_of(metadata, extra_data)
        target = None if status is None else validation.status_of(status)
        with self._locked():
            if self.creates_on_save and not self._exists(scan):
                # Refused before anything is written.
                validation.counts_of(processed, total, lower_bound)
                self.create_checkpoint(scan, DEFAULT_USER_ID, DEFAULT_OPERATION_TYPE)
            current = self._require_saveable(scan, target)
            lower_bound = lower_bound or current.total_is_lower_bound
            reported = current.total_items if total is None else total
            validation.counts_of(processed, reported, lower_bound)
            merged, lower_bound = scan_total.merged_total(reported, processed, lower_bound)
            now = self._now()
            saved = replace(
                current,
                cursor=checked_cursor,
                processed_items=processed,
                total_items=merged,
                total_is_lower_bound=lower_bound,
                # Merging can grow metadata past the bound even when each part is within it.
                metadata=current.metadata
                if patch is None
                else validation.metadata_of({**current.metadata, **patch}),
                timestamp=now,
                updated_at=now,
            )
            if target is not None:
                saved = replace(saved, status=target)
                if target in TERMINAL_STATUSES:
                    saved = replace(saved, lease_owner=None, lease_expires_at=None)
            self._write(saved)
        return saved

    def load_checkpoint(self, scan_id: ScanId) -> Checkpoint | None:
        """The checkpoint of `scan_id`, or None if there is none."""
        return self._read(validation.scan_id_of(scan_id))

    def get_active_checkpoints(
        self, user_id: int | None = None, operation_type: str | None = None
    ) -> list[Checkpoint]:
        """In-progress and paused checkpoints, newest first, optionally of one user or operation."""
        user = None if user_id is None else validation.user_id_of(user_id)
        operation = None if operation_type is None else validation.operation_type_of(operation_type)
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
        """Finish an active scan; InvalidTransition if it finished already."""
        return self._finish(validation.scan_id_of(scan_id), ScanStatus.COMPLETED, None)

    def mark_checkpoint_failed(self, scan_id: ScanId, error_message: str) -> Checkpoint:
        """Fail an active scan with a non-empty reason; InvalidTransition if it finished already."""
        if not isinstance(error_message, str) or not error_message.strip():
            raise InvalidInput(f"error_message must be a non-empty string, got {error_message!r}")
        return self._finish(validation.scan_id_of(scan_id), ScanStatus.FAILED, error_message)

    def cleanup_old_checkpoints(self, days: int = 7) -> int:
        """Delete finished checkpoints untouched for `days` days; how many were deleted."""
        cutoff = self._now() - timedelta(days=validation.days_of(days))
        deleted = 0
        with self._locked():
            for checkpoint in list(self._read_all()):
                updated_at = checkpoint.updated_at or checkpoint.timestamp
                if checkpoint.status in TERMINAL_STATUSES and updated_at < cutoff:
                    self._delete(checkpoint.scan_id)
                    deleted += 1
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
                updated_at=self._now(),
            )
            self._write(finished)
        return finished

    def _require_saveable(self, scan: uuid.UUID, target: ScanStatus | None) -> Checkpoint:
        if target is None:
            return self._require_active(scan, change_of(None))
        checkpoint = self._read(scan)
        if checkpoint is None:
            raise CheckpointNotFound.of_scan(scan)
        if checkpoint.status not in save_sources_of(target):
            raise InvalidTransition.not_active(scan, checkpoint.status, change_of(target))
        return checkpoint

    def _require_active(self, scan: uuid.UUID, change: str) -> Checkpoint:
        checkpoint = self._read(scan)
        if checkpoint is None:
            raise CheckpointNotFound.of_scan(scan)
        if checkpoint.status not in ACTIVE_STATUSES:
            raise InvalidTransition.not_active(scan, checkpoint.status, change)
        return checkpoint
