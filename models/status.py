"""The lifecycle states of a scan."""

from __future__ import annotations

from enum import StrEnum


class ScanStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Terminal rows are the only ones cleanup may delete.
TERMINAL_STATUSES = frozenset({ScanStatus.COMPLETED, ScanStatus.FAILED, ScanStatus.CANCELLED})
# Active rows are the ones a user may still resume.
ACTIVE_STATUSES = frozenset({ScanStatus.IN_PROGRESS, ScanStatus.PAUSED})
