"""Recovery: give orphaned chain scans a new lease token and publish the page they are due.

Two clocks decide what is orphaned (DESIGN invariant 8), as in Temporal's heartbeat and
schedule-to-start timeouts:

- a page that runs holds a short heartbeat lease; once it lapses, its worker is dead
  (`lease expired while running`), and at a worker's start its own previous life is
  (`restart`);
- a page that waits in the queue holds no lease and is alive however long it waits; it is
  orphaned only if the broker lost its message (`broker lost the message`) or the worker
  that took the message died before starting the page, which the broker ledger tells.

Only rows the page chain runs are considered (DESIGN invariant 7). Reclaiming is a
compare-and-set of the lease token on the row's whole fence, so concurrent recoverers never
both win, and the old chain's messages are fenced off by the new token.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from worker import observe
from worker.chain import broker_ledger
from worker.chain.ledger_audit import LedgerAudit
from worker.db import Session, tallies
from worker.db import reclaim as reclaim_db
from worker.db.reclaim import Candidate
from worker.domain.page_message import PageMessage

log = logging.getLogger(__name__)

Publish = Callable[[PageMessage], None]


class Cause(StrEnum):
    LEASE_EXPIRED = "lease expired while running"
    RESTART = "its worker restarted"
    BROKER_LOST = "the broker lost the message"
    TAKEN_BY_DEAD_WORKER = "its worker died before starting the page"
    MESSAGE_MISSING = "its message was in no queue, held by no worker (the ledger audit)"

    @property
    def metric_label(self) -> str:
        """The cause as marketscan_recoveries_total{cause} names it: short, fixed."""
        return _METRIC_LABELS[self]


_METRIC_LABELS = {
    Cause.LEASE_EXPIRED: observe.RECOVERY_LEASE_EXPIRED,
    Cause.RESTART: observe.RECOVERY_WORKER_RESTARTED,
    Cause.BROKER_LOST: observe.RECOVERY_BROKER_LOST,
    Cause.TAKEN_BY_DEAD_WORKER: observe.RECOVERY_WORKER_DIED_BEFORE_START,
    # The audit found what the broker lost: the same cause, found by another way.
    Cause.MESSAGE_MISSING: observe.RECOVERY_BROKER_LOST,
}


@dataclass(frozen=True)
class Reclaimed:
    scan_id: uuid.UUID
    old_owner: str | None
    message: PageMessage
    cause: Cause


def recover(
    session: Session,
    publish: Publish,
    queued_grace_seconds: float,
    *,
    own_hostname: str | None = None,
    limit: int = 1000,
    audit: LedgerAudit | None = None,
) -> list[Reclaimed]:
    """Reclaim orphaned chain scans, commit, then publish their due pages.

    With `own_hostname`, also reclaims the pages that worker was running or had taken,
    whatever their lease says. Otherwise a queued page younger than `queued_grace_seconds`
    is left alone: its publish may still be on its way to the broker, or the worker that
    took it may be about to start it. With `audit`, pages whose marker has said `sent` for
    long are looked for in the queue itself, when the audit is due.
    """
    # Queued pages first: a running page reclaimed below turns queued in this transaction.
    reclaimed = _reclaim_queued(session, queued_grace_seconds, own_hostname, limit, audit)
    reclaimed += _reclaim_running(session, own_hostname, limit)
    # Counted in the reclaims' own transaction: a recovery is tallied if and only if it won.
    # Last, so no recoverer holds a tally row while it waits for a scan's row (no deadlock).
    causes = Counter(item.cause.metric_label for item in reclaimed)
    tallies.add(session, {(tallies.RECOVERIES, cause): n for cause, n in sorted(causes.items())})
    session.commit()
    for item in reclaimed:
        publish(item.message)
        log.warning(
            "recovered scan %s (%s) from owner %s at page %d offset %d",
            item.scan_id,
            item.cause.value,
            item.old_owner,
            item.message.page_seq,
            item.message.page_offset,
        )
    return reclaimed


def _reclaim_running(session: Session, own_hostname: str | None, limit: int) -> list[Reclaimed]:
    reclaimed = []
    for row in reclaim_db.running_orphans(session, own_hostname, limit):
        restarted = own_hostname is not None and row.lease_owner == own_hostname
        cause = Cause.RESTART if restarted else Cause.LEASE_EXPIRED
        reclaimed.extend(_reclaim(session, row, cause))
    return reclaimed


def _reclaim_queued(
    session: Session,
    grace_seconds: float,
    own_hostname: str | None,
    limit: int,
    audit: LedgerAudit | None,
) -> list[Reclaimed]:
    """Queued pages the broker no longer holds, or that a dead worker took; in batches."""
    judge = _QueuedJudge(own_hostname, grace_seconds)
    reclaimed: list[Reclaimed] = []
    suspects: list[tuple[Candidate, PageMessage]] = []
    after_id = 0
    # A restart looks at every queued page, for those it took; beat only at settled ones.
    every = own_hostname is not None
    suspect_seconds = None if audit is None else audit.suspect_after_seconds
    while rows := reclaim_db.queued_pages(
        session, grace_seconds, every, after_id, limit, suspect_seconds
    ):
        after_id = rows[-1].id
        messages = [_message_of(row) for row in rows]
        for row, message, marker in zip(
            rows, messages, broker_ledger.markers(messages), strict=True
        ):
            cause = judge.cause(row, message, marker)
            if cause is not None:
                reclaimed.extend(_reclaim(session, row, cause))
            elif row.settled and row.suspect and marker.state is broker_ledger.State.SENT:
                suspects.append((row, message))
    if audit is not None and suspects and audit.due():
        lost = audit.lost([message for _, message in suspects])
        for row, message in suspects:
            if broker_ledger.fence_of(message) in lost:
                reclaimed.extend(_reclaim(session, row, Cause.MESSAGE_MISSING))
    return reclaimed


class _QueuedJudge:
    """Decides, from the broker's marker, whether a queued page is an orphan."""

    def __init__(self, own_hostname: str | None, grace_seconds: float) -> None:
        self._own_hostname = own_hostname
        self._grace_seconds = grace_seconds
        self._received: set[str] | None = None  # read once, and only if a page needs it

    def cause(
        self, row: Candidate, message: PageMessage, marker: broker_ledger.Marker
    ) -> Cause | None:
        """Why the page is an orphan, or None while it is alive.

        A restarting worker also reclaims, at once, what its previous life took, and what it
        committed but did not get to publish (the row names it as the publisher).
        """
        mine = self._own_hostname is not None and row.lease_owner == self._own_hostname
        state, taker = marker.state, marker.hostname
        if state is broker_ledger.State.SENT and (row.settled or mine) and self._popped(message):
            state = broker_ledger.State.TAKEN  # popped by a worker that never marked it
            taker = row.lease_owner if mine else None
        if state is broker_ledger.State.TAKEN:
            if self._own_hostname is not None and taker == self._own_hostname:
                return Cause.RESTART
            return Cause.TAKEN_BY_DEAD_WORKER if row.settled else None
        if state in (broker_ledger.State.LOST, broker_ledger.State.PENDING):
            if mine:
                return Cause.RESTART
            # Never published (its publisher died) or published and lost: the same remedy.
            return Cause.BROKER_LOST if row.settled else None
        return None

    def _popped(self, message: PageMessage) -> bool:
        if self._received is None:
            # Popped within the grace: a live worker may be about to mark it taken.
            self._received = broker_ledger.received_fences(time.time() - self._grace_seconds)
        return broker_ledger.fence_of(message) in self._received


def _message_of(row: Candidate) -> PageMessage:
    return PageMessage(row.scan_id, row.lease_token, row.page_seq, row.page_offset)


def _reclaim(session: Session, row: Candidate, cause: Cause) -> list[Reclaimed]:
    """A new token on the row as it was read; [] if someone changed it meanwhile."""
    token = reclaim_db.reclaim(session, row)
    if token is None:
        return []
    message = PageMessage(row.scan_id, token, row.page_seq, row.page_offset)
    return [Reclaimed(row.scan_id, row.lease_owner, message, cause)]
