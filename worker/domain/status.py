"""A scan's lifecycle states and the one table of the moves between them.

Every status change anywhere (the CLI and client, the seed API, page commits, recovery)
is a guarded UPDATE whose guard comes from TRANSITIONS: the row moves only from a status
that allows the target, so two writers racing can never take a scan somewhere the table
does not allow.
"""

from __future__ import annotations

from enum import StrEnum


class ScanStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# From each status, the statuses a scan may move to.
TRANSITIONS: dict[ScanStatus, frozenset[ScanStatus]] = {
    # pause, cancel, the last page's commit (or the seed API's mark_*), a failure
    ScanStatus.IN_PROGRESS: frozenset(
        {ScanStatus.PAUSED, ScanStatus.CANCELLED, ScanStatus.COMPLETED, ScanStatus.FAILED}
    ),
    # resume, cancel; a last page that commits while paused leaves nothing to resume;
    # the seed API's loop may finish or fail a scan it paused
    ScanStatus.PAUSED: frozenset(
        {ScanStatus.IN_PROGRESS, ScanStatus.CANCELLED, ScanStatus.COMPLETED, ScanStatus.FAILED}
    ),
    # resume from the checkpoint, or give it up
    ScanStatus.FAILED: frozenset({ScanStatus.IN_PROGRESS, ScanStatus.CANCELLED}),
    ScanStatus.COMPLETED: frozenset(),
    ScanStatus.CANCELLED: frozenset(),
}

# Terminal rows are the only ones cleanup may delete.
TERMINAL_STATUSES = frozenset({ScanStatus.COMPLETED, ScanStatus.FAILED, ScanStatus.CANCELLED})
# Active rows are the ones a user may still resume and the seed API still saves.
ACTIVE_STATUSES = frozenset({ScanStatus.IN_PROGRESS, ScanStatus.PAUSED})


def sources_of(target: ScanStatus) -> frozenset[ScanStatus]:
    """The statuses from which a scan may become `target`."""
    return frozenset(source for source, targets in TRANSITIONS.items() if target in targets)


def can_move(source: ScanStatus, target: ScanStatus) -> bool:
    return target in TRANSITIONS[source]


def save_sources_of(target: ScanStatus) -> frozenset[ScanStatus]:
    """The statuses from which `save_checkpoint(status=target)` (the upstream module's keyword)
    may save: an active scan that is `target` already or that the table lets become it."""
    return frozenset(
        source for source in ACTIVE_STATUSES if source == target or can_move(source, target)
    )


def change_of(target: ScanStatus | None) -> str:
    """How an InvalidTransition names a save's change: plain, or to `target`."""
    return "take checkpoints" if target is None else f"take checkpoints as {target.value}"
