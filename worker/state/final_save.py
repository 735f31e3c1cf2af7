"""The last checkpoint of a plain program: remembered progress, saved on SIGTERM or SIGINT.

Shared by StateManager and LocalStateManager; Celery workers drain through
worker.celery_glue.drain instead. A process has one handler for both signals, whatever number of
managers and scans registered: every registered scan gets its final checkpoint, then every
cleanup callback runs, then the process exits.
"""

from __future__ import annotations

import logging
import signal
import sys
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from worker.db import DatabaseError
from worker.domain.checkpoint import Checkpoint
from worker.domain.status import TERMINAL_STATUSES
from worker.domain.validation import scan_id_of
from worker.errors import MarketscanError
from worker.redaction import redacted

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    cursor: str | None
    processed_items: int
    total_items: int | None = None
    total_is_lower_bound: bool = False


SaveFinal = Callable[[uuid.UUID, Progress], object]
Cleanup = Callable[[], object]


@dataclass(frozen=True)
class _Registration:
    owner: FinalCheckpoint
    save: SaveFinal
    cleanup: Cleanup | None


# Every scan registered in this process, in registration order (dicts keep it).
_registered: dict[uuid.UUID, _Registration] = {}


class FinalCheckpoint(ABC):
    """Keeps each scan's latest progress in memory and saves it when the program is stopped."""

    def __init__(self) -> None:
        self._progress: dict[uuid.UUID, Progress] = {}

    def record_progress(
        self,
        scan_id: uuid.UUID | str,
        cursor: str | None,
        processed_items: int,
        total_items: int | None = None,
        *,
        total_is_lower_bound: bool = False,
    ) -> None:
        """Remember progress in memory only; the shutdown handler saves the latest.

        A total once saved or recorded as a lower bound stays one, so the final save may
        count past it.
        """
        scan = scan_id_of(scan_id)
        known = self._progress.get(scan)
        lower_bound = total_is_lower_bound or (known is not None and known.total_is_lower_bound)
        self._progress[scan] = Progress(cursor, processed_items, total_items, lower_bound)

    def _remember(self, checkpoint: Checkpoint) -> Checkpoint:
        self._progress[checkpoint.scan_id] = Progress(
            checkpoint.cursor,
            checkpoint.processed_items,
            checkpoint.total_items,
            checkpoint.total_is_lower_bound,
        )
        return checkpoint

    def _saved(self, checkpoint: Checkpoint) -> Checkpoint:
        """Remember a save's progress; a save that finished the scan (upstream's `status=`
        keyword) forgets it, as completing does."""
        if checkpoint.status in TERMINAL_STATUSES:
            return self._finished(checkpoint)
        return self._remember(checkpoint)

    def _finished(self, checkpoint: Checkpoint) -> Checkpoint:
        """Forget a scan that completed or failed: nothing is left to save or clean up."""
        self._progress.pop(checkpoint.scan_id, None)
        registration = _registered.get(checkpoint.scan_id)
        if registration is not None and registration.owner is self:
            del _registered[checkpoint.scan_id]
        return checkpoint

    @abstractmethod
    def _final_saver(self) -> SaveFinal:
        """How to write the final checkpoint; prepared before any signal arrives."""

    def register_shutdown_handlers(
        self, scan_id: uuid.UUID | str, cleanup_callback: Cleanup | None = None
    ) -> None:
        """On SIGTERM or SIGINT: save a final checkpoint, run `cleanup_callback`, exit 128+signum.

        Every scan registered in the process, through any manager, is saved first (the latest
        of `save_checkpoint` and `record_progress`), then every callback runs, in registration
        order. A checkpoint that cannot be saved (the scan already finished, the database is
        down or the row is locked) is logged, and the callbacks still run. Registering a scan
        again replaces its callback; completing or failing it through the manager unregisters it.
        """
        scan = scan_id_of(scan_id)
        _registered[scan] = _Registration(self, self._final_saver(), cleanup_callback)
        signal.signal(signal.SIGTERM, _handle)
        signal.signal(signal.SIGINT, _handle)


def _handle(signum: int, frame: FrameType | None) -> None:
    # A second signal during the final saves means "stop now".
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    registrations = list(_registered.items())
    _registered.clear()
    for scan, registration in registrations:
        _save_final(scan, registration)
    for scan, registration in registrations:
        if registration.cleanup is not None:
            _clean_up(scan, registration.cleanup)
    sys.exit(128 + signum)


def _save_final(scan: uuid.UUID, registration: _Registration) -> None:
    progress = registration.owner._progress.get(scan)
    if progress is None:
        return
    try:
        registration.save(scan, progress)
    except (MarketscanError, DatabaseError) as exc:
        # Raising here would surface inside whatever code the signal interrupted.
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("final checkpoint of scan %s not saved: %s", scan, redacted(first_line))


def _clean_up(scan: uuid.UUID, cleanup: Cleanup) -> None:
    try:
        cleanup()
    except Exception:
        # The process exits next whatever happens; one failing callback must not keep the
        # others from releasing their resources.
        log.exception("cleanup callback of scan %s failed", scan)
