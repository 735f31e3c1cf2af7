"""The ledger audit walks kombu's queue lists and unacked set on the real broker Redis: a
page message that is in neither, with its marker still `sent`, is reported lost."""

from __future__ import annotations

import uuid

import redis

from worker.chain import broker_ledger
from worker.chain.ledger_audit import LedgerAudit
from worker.domain.page_message import PageMessage

QUEUES = ("marketscan", "marketscan.recovered")


def _published(count: int, recovered: bool = False) -> list[PageMessage]:
    from worker.app import publisher

    messages = [PageMessage(uuid.uuid4(), uuid.uuid4(), n, 0) for n in range(count)]
    for message in messages:
        publisher.publish_page(message, recovered=recovered)
    return messages


def test_only_messages_in_no_queue_and_not_unacked_with_a_sent_marker_are_lost(
    env: dict[str, str],
) -> None:
    from worker.app import app

    # Given five queued pages (one on the recovered queue), in chunks of two
    queued = _published(4) + _published(1, recovered=True)
    broker = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    # When one message is popped and lost, one popped by a live consumer (unacked), and
    # one popped by a worker that has marked it taken
    lost, held, taken = queued[0], queued[1], queued[2]  # rpop takes the oldest first
    assert broker.rpop("marketscan") is not None
    with app.connection_for_read() as connection:
        assert connection.default_channel.basic_get("marketscan", no_ack=False) is not None
        assert broker.rpop("marketscan") is not None
        broker_ledger.taken(taken, "w1@test")
        # Then the audit reports the lost one only
        audit = LedgerAudit(QUEUES, seconds=60, chunk=2)
        assert audit.lost(queued) == {broker_ledger.fence_of(lost)}
        assert held and audit.lost([held, queued[3], queued[4]]) == set()
    broker.close()


def test_an_audit_runs_at_most_once_per_half_bound() -> None:
    audit = LedgerAudit(QUEUES, seconds=3600)
    assert audit.due() is True
    assert audit.due() is False
    assert audit.suspect_after_seconds == 1800
