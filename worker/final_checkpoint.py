"""The last checkpoint of a plain program: remembered progress, saved on SIGTERM or SIGINT.

Shared by StateManager and LocalStateManager; Celery workers drain through
worker.shutdown instead.
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

from worker.checkpoint import Checkpoint, scan_id_of
from worker.errors import MarketscanError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    cursor: str | None
    processed_items: int
    total_items: int | None = None


SaveFinal = Callable[[uuid.UUID, Progress], object]


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
    ) -> None:
        """Remember progress in memory only; the shutdown handler saves the latest."""
        self._progress[scan_id_of(scan_id)] = Progress(cursor, processed_items, total_items)

    def _remember(self, checkpoint: Checkpoint) -> Checkpoint:
        self._progress[checkpoint.scan_id] = Progress(
            checkpoint.cursor, checkpoint.processed_items, checkpoint.total_items
        )
        return checkpoint

    @abstractmethod
    def _final_saver(self) -> SaveFinal:
        """How to write the final checkpoint; prepared before any signal arrives."""

    def register_shutdown_handlers(
        self, scan_id: uuid.UUID | str, cleanup_callback: Callable[[], object] | None = None
    ) -> None:
        """On SIGTERM or SIGINT: save a final checkpoint, run `cleanup_callback`, exit 128+signum.

        The final checkpoint is the latest of `save_checkpoint` and `record_progress`. If it
        cannot be saved (the scan already finished, say), that is logged and the callback
        still runs.
        """
        scan = scan_id_of(scan_id)
        save = self._final_saver()

        def handle(signum: int, frame: FrameType | None) -> None:
            # A second signal during the final save means "stop now".
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            progress = self._progress.get(scan)
            if progress is not None:
                try:
                    save(scan, progress)
                except MarketscanError as exc:
                    log.warning("final checkpoint of scan %s not saved: %s", scan, exc)
            if cleanup_callback is not None:
                cleanup_callback()
            sys.exit(128 + signum)

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
