"""Beat's watch clock: each tick starts the due passes of watches (worker.schedules.firing).

It runs on a thread of the beat process beside the recovery clock, for the same reason:
a due pass must start on time whatever the page queue holds. Several beats may run it at
once; each slot is taken by a compare-and-set and its scan id is derived from the slot.
"""

from __future__ import annotations

from worker.db import session_scope
from worker.schedules import firing
from worker.schedules.firing import StartPass
from worker.settings import get_settings


def fire_due_watches(start: StartPass) -> int:
    """One tick of the clock; how many passes it started. `start` is the one every way in
    uses (worker.app's publisher.start), under the pass's own id."""
    settings = get_settings()
    return firing.tick(
        session_scope,
        start,
        settings.watch_catchup_seconds,
        settings.retention_days,
        settings.telegram_allowed_users,
    )
