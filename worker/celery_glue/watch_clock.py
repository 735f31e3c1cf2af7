"""Beat's watch clock: each tick starts the due passes of watches (worker.schedules.firing).

It runs on a thread of the beat process beside the recovery clock, for the same reason:
a due pass must start on time whatever the page queue holds. Several beats may run it at
once; each slot is taken by a compare-and-set and its scan id is derived from the slot.
"""

from __future__ import annotations

import functools
import uuid

from worker.chain.lifecycle import Publish, start_scan
from worker.db import session_scope
from worker.domain.scan_params import ScanParams
from worker.schedules import firing
from worker.settings import get_settings


def start_pass(publish: Publish, params: ScanParams, scan_id: uuid.UUID) -> uuid.UUID:
    """The idempotent start every way in uses (invariant 9), under the pass's own id."""
    with session_scope() as session:
        return start_scan(session, params, get_settings(), publish, scan_id)


def fire_due_watches(publish: Publish) -> int:
    """One tick of the clock, publishing through `publish`; how many passes it started."""
    settings = get_settings()
    return firing.tick(
        session_scope,
        functools.partial(start_pass, publish),
        settings.watch_catchup_seconds,
        settings.retention_days,
        settings.telegram_allowed_users,
    )
