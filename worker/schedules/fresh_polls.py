"""Beat's fresh clock, one tick: publish the polls of fresh watches that are due.

A fresh watch's scan rests between polls, holding no worker slot and no message (waiting
is not dying, invariant 8). Each tick queues the due ones (worker.db.fresh_polls, one
guarded UPDATE, so of two beats one publishes each) and publishes their page messages
after the commit (invariant 4). Beat's glue hands in the publish; this room imports no
chain.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from contextlib import AbstractContextManager

from worker.db import Session, fresh_polls
from worker.domain.page_message import PageMessage

log = logging.getLogger(__name__)

Sessions = Callable[[], AbstractContextManager[Session]]
Publish = Callable[[PageMessage], None]


def tick(sessions: Sessions, publish: Publish, allowed_owners: frozenset[int] = frozenset()) -> int:
    """Publish every due poll; how many. A beat killed between the commit and a publish
    leaves that poll queued without its message, which recovery republishes."""
    with sessions() as session:
        due = fresh_polls.take_due_polls(session, socket.gethostname(), allowed_owners)
        session.commit()
    for message in due:
        publish(message)
    return len(due)
