"""Beat's fresh clock: each tick publishes the due polls of fresh watches
(worker.schedules.fresh_polls), on a thread of the beat process like the watch clock, so a
poll is published on time whatever the page queue holds."""

from __future__ import annotations

from worker.db import session_scope
from worker.schedules import fresh_polls
from worker.schedules.fresh_polls import Publish
from worker.settings import get_settings


def publish_due_polls(publish: Publish) -> int:
    """One tick of the clock; how many polls it published. `publish` is the publisher's."""
    return fresh_polls.tick(session_scope, publish, get_settings().telegram_allowed_users)
