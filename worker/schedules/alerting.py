"""The alert follower, one tick: each committed page of a watch's pass with finds becomes one
alert, sent after its commit and at most once (invariant 10).

Why a follower of committed rows rather than the page task after its commit: the page task
would have to send inside the scan's hot loop (a Telegram wait would hold the page) and a
worker killed between its commit and the send would lose the alert, while a follower reads
only what is committed, by construction, from whichever beat is up. Each page is claimed
by a compare-and-set of its pass's cursor before it is sent, so two beats or a redone tick
never alert it twice; a beat that dies between the claim and the send loses that one
alert rather than ever sending one twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from worker.db import Session, alert_finds
from worker.db import watches as watch_store
from worker.domain.alert import Find, alert_text
from worker.errors import ChatGone, ChatMigrated

log = logging.getLogger(__name__)

Sessions = Callable[[], AbstractContextManager[Session]]
# Passes older than this are not followed any more: their finds are no news.
FOLLOW_SECONDS = 24 * 3600.0


class AlertOutlet(Protocol):
    """Where alerts go, within the chat's and the fleet's rates (worker.notify.alerts)."""

    def chat_ready(self, chat_id: int) -> bool:
        """Take the chat's next send slot if it has one now."""

    def fresh(self, chat_id: int, finds: list[Find]) -> list[Find]:
        """The finds not alerted to this chat recently (and mark them alerted)."""

    def send(self, chat_id: int, text: str) -> bool:
        """Send one message; False if it could not be delivered. ChatGone or ChatMigrated
        if the chat takes no messages, or moved."""


def tick(
    sessions: Sessions, outlet: AlertOutlet, top: int, allowed_owners: frozenset[int] = frozenset()
) -> int:
    """Alert at most one page per chat; how many alerts were sent. While an allow-list is
    set, nothing is sent for a watch whose owner is not on it."""
    with sessions() as session:
        pending = alert_finds.pending_passes(session, FOLLOW_SECONDS, allowed_owners)
    served: set[int] = set()
    sent = 0
    for one in pending:
        if one.chat_id in served:
            continue  # one message per chat per tick: the chat's rate allows no more
        finds = _claim_next_page(sessions, outlet, one)
        if finds is None:
            continue
        served.add(one.chat_id)
        fresh = outlet.fresh(one.chat_id, finds)
        if fresh and _deliver(sessions, outlet, one.chat_id, alert_text(one.scan_id, fresh, top)):
            sent += 1
    return sent


def _deliver(
    sessions: Sessions, outlet: AlertOutlet, chat_id: int, text: str, follow: bool = True
) -> bool:
    """Send; a group that moved is followed (once), a chat that is gone pauses its watches."""
    try:
        return outlet.send(chat_id, text)
    except ChatMigrated as moved:
        if not follow:
            raise
        with sessions() as session:
            watch_store.move_chat(session, chat_id, moved.new_chat_id)
            session.commit()
        log.info("chat %d moved to %d: its watches follow", chat_id, moved.new_chat_id)
        return _deliver(sessions, outlet, moved.new_chat_id, text, follow=False)
    except ChatGone as gone:
        with sessions() as session:
            paused = watch_store.pause_chat(session, chat_id, f"the chat refused alerts: {gone}")
            session.commit()
        log.warning("chat %d refused an alert (%s): %d watches paused", chat_id, gone, paused)
        return False


def _claim_next_page(
    sessions: Sessions, outlet: AlertOutlet, one: alert_finds.PendingPass
) -> list[Find] | None:
    """The pass's next committed page of finds, claimed for this alert; None if not now."""
    with sessions() as session:
        finds = alert_finds.next_page_finds(session, one.scan_id, one.alerted_through_id)
        if not finds:
            return None
        if not outlet.chat_ready(one.chat_id):
            return None  # not taken: the finds wait in the database for the chat's next slot
        through = max(find.opportunity_id for find in finds)
        if not alert_finds.claim(session, one.scan_id, one.alerted_through_id, through):
            session.rollback()
            return None  # another beat claimed it
        session.commit()
    return finds
