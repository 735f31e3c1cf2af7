"""The alert follower, one tick: each committed page of a watch's pass with finds is sent to
the watch's chat after its commit, at least once (invariant 10).

Why a follower of committed rows rather than the page task after its commit: the page task
would have to send inside the scan's hot loop (a Telegram wait would hold the page) and a
worker killed between its commit and the send would lose the alert, while a follower reads
only what is committed, by construction, from whichever beat is up.

Read, send, then record: under a short per-pass lock in the broker's Redis, the follower
reads the page after the pass's cursor, leaves out what the chat was alerted at that price
recently, sends, and only once Telegram took the message marks its finds alerted and moves
the cursor past them. A failed send records nothing, so the next tick sends it again. If
a beat dies between Telegram's answer and its record, the next beat sends the message
again once the dead beat's lock has run out: the one duplicate there can be. A lost alert
is a missed trade; a duplicate is only noise.

A page too long for one message goes as several, one per tick (the chat's rate), each a
run of its finds in commit order: the cursor moves past each once Telegram took it, so a
part that fails is sent again alone.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from worker.db import Session, alert_finds
from worker.db import watches as watch_store
from worker.domain.alert import Alert, Find, alerts_of
from worker.errors import ChatGone, ChatMigrated

log = logging.getLogger(__name__)

Sessions = Callable[[], AbstractContextManager[Session]]
# Passes started longer ago than this are not followed any more: their finds are no news.
# A fresh watch's pass is the exception (worker.db.alert_finds.pending_passes).
FOLLOW_SECONDS = 24 * 3600.0


class AlertOutlet(Protocol):
    """Where alerts go, within the chat's and the fleet's rates (worker.notify.alerts)."""

    def pass_lock(self, scan_id: uuid.UUID) -> AbstractContextManager[bool]:
        """Hold the pass's send lock for a block, if no one else does; whether it is held."""

    def chat_ready(self, chat_id: int) -> bool:
        """Take the chat's next send slot if it has one now."""

    def unsent(self, chat_id: int, finds: list[Find]) -> list[Find]:
        """The finds not alerted to this chat at their price recently; marks nothing."""

    def mark_sent(self, chat_id: int, finds: list[Find]) -> None:
        """Remember the finds as alerted to this chat (once Telegram took them)."""

    def send(self, chat_id: int, text: str) -> bool:
        """Send one message; False if it could not be delivered. ChatGone or ChatMigrated
        if the chat takes no messages, or moved."""


def tick(
    sessions: Sessions,
    outlet: AlertOutlet,
    link_base: str,
    allowed_owners: frozenset[int] = frozenset(),
) -> int:
    """Send at most one message per chat; how many Telegram took. Each find links to its
    listing: `link_base`, then the offer id. While an allow-list is set, nothing is sent for
    a watch whose owner is not on it."""
    with sessions() as session:
        pending = alert_finds.pending_passes(session, FOLLOW_SECONDS, allowed_owners)
    served: set[int] = set()
    sent = 0
    for one in pending:
        if one.chat_id in served:
            continue  # one message per chat per tick: the chat's rate allows no more
        with outlet.pass_lock(one.scan_id) as held:
            if not held:
                continue  # another beat is sending this pass's page
            delivered = _alert_next_page(sessions, outlet, one, link_base)
        if delivered is not None:
            served.add(one.chat_id)
            sent += 1 if delivered else 0
    return sent


def _alert_next_page(
    sessions: Sessions, outlet: AlertOutlet, one: alert_finds.PendingPass, link_base: str
) -> bool | None:
    """Send the next message of the pass's next page, recording it once Telegram took it;
    None if the chat's slot was not spent (nothing to send, or no slot now), else whether
    Telegram took the message."""
    with sessions() as session:
        # Read again under the lock: the pending list was read before it was taken.
        through = alert_finds.cursor_of(session, one.scan_id)
        if through is None:
            return None
        page = alert_finds.next_page_finds(session, one.scan_id, through)
    if not page:
        return None
    unsent = outlet.unsent(one.chat_id, page)
    if not unsent:
        # The chat had every one of them at that price already (another watch, or a beat
        # that died after marking them): the cursor moves on with nothing sent.
        _record(sessions, one.scan_id, through, page[-1].opportunity_id)
        return None
    if not outlet.chat_ready(one.chat_id):
        return None  # not sent: the finds wait in the database for the chat's next slot
    message = alerts_of(one.scan_id, unsent, link_base)[0]
    delivered_to = _deliver(sessions, outlet, one.chat_id, message.text)
    if delivered_to is None:
        return False  # nothing recorded: the next tick sends it again
    outlet.mark_sent(delivered_to, list(message.finds))
    _record(sessions, one.scan_id, through, _done_through(page, unsent, message))
    return True


def _done_through(page: list[Find], unsent: list[Find], message: Alert) -> int:
    """The last find of the page the pass is done with once `message` went: every find
    before the first unsent one the message left for the next (those the chat had already
    were left out on purpose), or the whole page if it left none."""
    left = unsent[len(message.finds) :]
    if not left:
        return page[-1].opportunity_id
    return max(find.opportunity_id for find in page if find.opportunity_id < left[0].opportunity_id)


def _record(
    sessions: Sessions, scan_id: uuid.UUID, old_through_id: int, new_through_id: int
) -> None:
    with sessions() as session:
        if alert_finds.advance(session, scan_id, old_through_id, new_through_id):
            session.commit()
            return
        session.rollback()
    # Only if the lock ran out under a slow send and another beat sent the page too.
    log.warning("pass %s: its alert cursor moved while this beat held its lock", scan_id)


def _deliver(
    sessions: Sessions, outlet: AlertOutlet, chat_id: int, text: str, follow: bool = True
) -> int | None:
    """Send; the chat Telegram delivered to, or None. A group that moved is followed (once),
    a chat that is gone pauses its watches (their finds wait for a resume)."""
    try:
        return chat_id if outlet.send(chat_id, text) else None
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
        return None
