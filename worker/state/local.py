"""File-based checkpoints for development: the DB StateManager's API, one JSON file per scan.

`LocalCheckpointStore` keeps the rules of `worker.state.records` (those of
`worker.db.checkpoints`) in files; `LocalStateManager` is the seed guide's awaitable manager
(worker.state.faces) on top. Files are replaced atomically and every change holds an
exclusive lock on `<state_dir>/.lock`, so each read-modify-write is a guarded update across
processes.
"""

from __future__ import annotations

import fcntl
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from worker.domain import validation
from worker.domain.checkpoint import Checkpoint
from worker.domain.validation import DEFAULT_CHECKPOINT_INTERVAL, DEFAULT_MAX_CONSECUTIVE_ERRORS
from worker.state.faces import AsyncCheckpointManager
from worker.state.file_format import (
    TEMP_SUFFIX,
    fsync_directory,
    make_private_directory,
    open_private,
    read_checkpoint_file,
    write_checkpoint_file,
)
from worker.state.records import (
    DEFAULT_OPERATION_TYPE,
    DEFAULT_USER_ID,
    CheckpointRecords,
)

LOCK_FILE_NAME = ".lock"
# The upstream module's default state directory, relative to the working directory.
DEFAULT_STATE_DIR = "data/checkpoints"
# What a save of a scan nobody created records: the file store is for development, where the
# seed guide saves straight away. Same as a CLI scan started for nobody.
DEFAULT_LOCAL_USER_ID = DEFAULT_USER_ID
DEFAULT_LOCAL_OPERATION_TYPE = DEFAULT_OPERATION_TYPE


class LocalCheckpointStore(CheckpointRecords):
    """Checkpoints as `<state_dir>/<scan_id>.json` files; sync methods, DB semantics."""

    creates_on_save = True

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir)
        make_private_directory(self.state_dir)
        # flock keeps other processes out; the RLock keeps other threads out and lets a signal
        # handler that interrupted a change in this very thread go ahead with its own.
        self._thread_lock = threading.RLock()
        self._lock_depth = 0

    def cleanup_old_checkpoints(self, days: int = 7) -> int:
        """Delete terminal checkpoints untouched for `days` days, and temp files left by crashes."""
        with self._locked():
            deleted = super().cleanup_old_checkpoints(days)
            # Every write holds the lock, so a temp file seen under it belongs to a dead writer.
            for temp in self.state_dir.glob(f".*{TEMP_SUFFIX}"):
                temp.unlink()
            fsync_directory(self.state_dir)
        return deleted

    def _exists(self, scan: uuid.UUID) -> bool:
        # A file that exists is taken, even when it cannot be read back.
        return self.file_of(scan).exists()

    def _read(self, scan: uuid.UUID) -> Checkpoint | None:
        return read_checkpoint_file(self.file_of(scan))

    def _write(self, checkpoint: Checkpoint) -> None:
        write_checkpoint_file(self.file_of(checkpoint.scan_id), checkpoint)

    def _delete(self, scan: uuid.UUID) -> None:
        self.file_of(scan).unlink()

    def file_of(self, scan: uuid.UUID) -> Path:
        """Where the checkpoint of `scan` is kept, whether or not it exists."""
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


class LocalStateManager(AsyncCheckpointManager):
    """The seed guide's awaitable StateManager API over a `LocalCheckpointStore`; it also reads
    the files the upstream module wrote in its state directory."""

    store: LocalCheckpointStore

    def __init__(
        self,
        state_dir: str | os.PathLike[str] = DEFAULT_STATE_DIR,
        checkpoint_interval: int = DEFAULT_CHECKPOINT_INTERVAL,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
    ) -> None:
        super().__init__(checkpoint_interval, max_consecutive_errors)
        self.store = LocalCheckpointStore(state_dir)

    @property
    def state_dir(self) -> Path:
        """The directory of the `<scan_id>.json` files, as a Path whatever was passed."""
        return self.store.state_dir

    def _get_checkpoint_file(self, scan_id: uuid.UUID | str) -> Path:
        # Upstream's name for a scan's file: code and tests written against it call it.
        return self.store.file_of(validation.scan_id_of(scan_id))
