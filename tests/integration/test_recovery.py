"""Recovery reclaims each orphaned chain scan exactly once, however many recoverers race,
and nothing that is merely waiting or that the caller's own loop runs."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import ScanCheckpoint
from worker.chain import broker_ledger
from worker.chain.recovery import Cause, recover
from worker.db import checkpoints as store
from worker.domain.page_message import PageMessage


def _scans(
    session: Session, count: int, *, expired: bool, owner: str = "dead@test"
) -> list[uuid.UUID]:
    ids = []
    for _ in range(count):
        scan_id = uuid.uuid4()
        store.create_checkpoint(session, scan_id, 1, "market_scan", lease_token=uuid.uuid4())
        ids.append(scan_id)
    session.commit()
    offset = func.make_interval(0, 0, 0, 0, 0, 0, -60 if expired else 600)
    session.execute(
        update(ScanCheckpoint)
        .where(ScanCheckpoint.scan_id.in_(ids))
        .values(lease_owner=owner, lease_expires_at=func.now() + offset, queued_at=None)
    )
    session.commit()
    return ids


def test_only_expired_in_progress_scans_are_reclaimed_with_a_new_token(session: Session) -> None:
    orphans = _scans(session, 3, expired=True)
    live = _scans(session, 2, expired=False)
    store.mark_checkpoint_completed(session, live[0])
    session.commit()
    published: list[PageMessage] = []
    reclaimed = recover(session, published.append, 30)
    assert {r.scan_id for r in reclaimed} == set(orphans)
    assert {m.scan_id for m in published} == set(orphans)
    session.expire_all()
    for message in published:
        row = session.scalars(
            select(ScanCheckpoint).where(ScanCheckpoint.scan_id == message.scan_id)
        ).one()
        assert (row.lease_token, row.recoveries) == (message.lease_token, 1)
    # Run again at once: every lease is fresh now, so nothing more is reclaimed.
    assert recover(session, published.append, 30) == []


def test_own_hostname_reclaims_that_workers_scans_even_with_a_live_lease(session: Session) -> None:
    mine = _scans(session, 2, expired=False, owner="me@test")
    _scans(session, 2, expired=False, owner="other@test")
    reclaimed = recover(session, lambda m: None, 30, own_hostname="me@test")
    assert {r.scan_id for r in reclaimed} == set(mine)


def test_two_concurrent_recover_commands_republish_each_orphan_exactly_once(
    env: dict[str, str], session: Session
) -> None:
    # Given 60 orphaned scans and an empty broker
    orphans = _scans(session, 60, expired=True)
    # When two `marketscan recover` processes run at the same moment
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "recover", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=60) for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    won = [json.loads(out)["recovered"] for out, _ in outputs]
    # Then each orphan was reclaimed by exactly one of them, and published exactly once
    assert Counter(scan for run in won for scan in run) == Counter(str(s) for s in orphans)
    client = redis.Redis.from_url(env["CELERY_BROKER_URL"])
    bodies = [json.loads(raw) for raw in client.lrange("marketscan.recovered", 0, -1)]
    client.close()
    assert len(bodies) == 60
    session.expire_all()
    assert set(session.scalars(select(ScanCheckpoint.recoveries))) == {1}


def test_a_recoverer_skips_scans_another_recoverer_holds_and_publishes_nothing_for_them(
    database_url: str, session: Session
) -> None:
    from sqlalchemy import create_engine, text

    from worker.db import driver_url

    # Given orphans that a first recoverer has locked and not yet committed
    orphans = _scans(session, 4, expired=True)
    engine = create_engine(driver_url(database_url))
    with Session(engine) as first, Session(engine) as second:
        first.execute(select(ScanCheckpoint.id).with_for_update())
        # When a second recoverer runs meanwhile (a lock wait would fail, not hang)
        second.execute(text("SET statement_timeout = 5000"))
        published: list[PageMessage] = []
        # Then it reclaims and publishes nothing, without waiting
        assert recover(second, published.append, 30) == []
        assert published == []
        first.rollback()
        # And once the first lets go, each orphan is reclaimed exactly once
        assert {r.scan_id for r in recover(second, published.append, 30)} == set(orphans)
        assert len(published) == 4
    engine.dispose()


def _mark_published(message: PageMessage) -> None:
    """The broker-ledger steps of worker.celery_glue.publisher around a publish."""
    broker_ledger.publishing(message)
    broker_ledger.sent(message)


def _queued(session: Session, count: int, *, queued_seconds_ago: int) -> list[PageMessage]:
    """Chain scans whose first page waits in the queue since `queued_seconds_ago`."""
    messages = []
    for _ in range(count):
        scan_id, token = uuid.uuid4(), uuid.uuid4()
        store.create_checkpoint(session, scan_id, 1, "market_scan", lease_token=token)
        messages.append(PageMessage(scan_id, token, 0, 0))
    session.execute(
        update(ScanCheckpoint)
        .where(ScanCheckpoint.scan_id.in_([m.scan_id for m in messages]))
        .values(queued_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, queued_seconds_ago))
    )
    session.commit()
    return messages


def test_a_page_waiting_in_the_queue_is_never_reclaimed_however_long_it_waits(
    env: dict[str, str], session: Session
) -> None:
    # Given pages queued an hour ago whose messages the broker still holds
    waiting = _queued(session, 3, queued_seconds_ago=3600)
    for message in waiting:
        _mark_published(message)
    # When recovery runs, even as a restarting worker
    reclaimed = recover(session, lambda m: None, 30, own_hostname="w1@test")
    # Then nothing is reclaimed and no recovery is counted
    assert reclaimed == []
    session.expire_all()
    assert set(session.scalars(select(ScanCheckpoint.recoveries))) == {0}


def test_a_queued_page_the_broker_lost_is_republished_once_past_the_grace(
    env: dict[str, str], session: Session
) -> None:
    # Given two queued pages whose markers were written, then a flushed broker
    settled = _queued(session, 1, queued_seconds_ago=60)
    fresh = _queued(session, 1, queued_seconds_ago=0)
    for message in settled + fresh:
        _mark_published(message)
    redis.Redis.from_url(env["CELERY_BROKER_URL"]).flushall()
    published: list[PageMessage] = []
    # When recovery runs with a 30 s grace
    reclaimed = recover(session, published.append, 30)
    # Then only the page queued longer than the grace is reclaimed, for the broker's loss
    assert [(r.scan_id, r.cause) for r in reclaimed] == [(settled[0].scan_id, Cause.BROKER_LOST)]
    assert [(m.scan_id, m.page_seq, m.page_offset) for m in published] == [
        (settled[0].scan_id, 0, 0)
    ]
    assert published[0].lease_token != settled[0].lease_token
    # And a second pass, with the republished message's marker in place, reclaims nothing
    _mark_published(published[0])
    assert recover(session, published.append, 30) == []


def test_recovery_never_touches_a_checkpoint_the_callers_own_loop_runs(
    env: dict[str, str], session: Session
) -> None:
    # Given a seed-style checkpoint (no lease) last saved long ago, beside a chain orphan
    own = uuid.uuid4()
    store.create_checkpoint(session, own, 7, "market_scan")
    session.execute(
        update(ScanCheckpoint)
        .where(ScanCheckpoint.scan_id == own)
        .values(updated_at=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 3600))
    )
    session.commit()
    orphans = _scans(session, 1, expired=True)
    # When recovery runs, as beat and as a restarting worker
    first = recover(session, lambda m: None, 30)
    second = recover(session, lambda m: None, 30, own_hostname="dead@test")
    # Then only the chain's orphan was reclaimed; the caller's row is exactly as it was
    assert [r.scan_id for r in first + second] == orphans
    row = session.scalars(select(ScanCheckpoint).where(ScanCheckpoint.scan_id == own)).one()
    session.refresh(row)
    assert (row.status, row.lease_token, row.recoveries, row.runner) == (
        "in_progress",
        None,
        0,
        "caller",
    )


def test_a_page_taken_by_a_worker_that_died_before_starting_it_is_reclaimed(
    env: dict[str, str], session: Session
) -> None:
    # Given two queued pages a worker received (moved to its unacked set) and never started
    settled = _queued(session, 1, queued_seconds_ago=60)
    fresh = _queued(session, 1, queued_seconds_ago=0)
    for message in settled + fresh:
        _mark_published(message)
        broker_ledger.taken(message, "dead@test")
    # When beat's recovery runs with a 30 s grace
    by_beat = recover(session, lambda m: None, 30)
    # Then only the one held past the grace is reclaimed, for its dead worker
    assert [(r.scan_id, r.cause) for r in by_beat] == [
        (settled[0].scan_id, Cause.TAKEN_BY_DEAD_WORKER)
    ]
    # And when that worker restarts under its name, it reclaims the other one at once
    by_restart = recover(session, lambda m: None, 30, own_hostname="dead@test")
    assert [(r.scan_id, r.cause) for r in by_restart] == [(fresh[0].scan_id, Cause.RESTART)]


def test_a_stale_copy_received_never_marks_the_live_page_as_taken(
    env: dict[str, str], session: Session
) -> None:
    # Given a queued page, and an old message of the same scan under another token
    (live,) = _queued(session, 1, queued_seconds_ago=60)
    _mark_published(live)
    stale = PageMessage(live.scan_id, uuid.uuid4(), live.page_seq, live.page_offset)
    # When a worker receives the stale copy and dies
    broker_ledger.taken(stale, "dead@test")
    # Then the live page still counts as waiting in the queue
    assert recover(session, lambda m: None, 30) == []
    assert broker_ledger.markers([live]) == [broker_ledger.Marker(broker_ledger.State.SENT)]


def test_a_page_received_before_its_publisher_noted_the_send_stays_marked_taken(
    env: dict[str, str], session: Session
) -> None:
    # Given a publish whose message a worker received before the publisher wrote "sent"
    (message,) = _queued(session, 1, queued_seconds_ago=60)
    broker_ledger.publishing(message)
    broker_ledger.taken(message, "dead@test")
    broker_ledger.sent(message)
    # Then the marker still names the worker that took it, which recovery acts on
    taken = broker_ledger.Marker(broker_ledger.State.TAKEN, "dead@test")
    assert broker_ledger.markers([message]) == [taken]
    assert [r.cause for r in recover(session, lambda m: None, 30)] == [Cause.TAKEN_BY_DEAD_WORKER]


def test_a_page_whose_publisher_died_before_publishing_is_republished_past_the_grace(
    env: dict[str, str], session: Session
) -> None:
    # Given a page whose publisher wrote its marker, then died before the message was out
    (message,) = _queued(session, 1, queued_seconds_ago=60)
    broker_ledger.publishing(message)
    # When recovery runs past the grace
    published: list[PageMessage] = []
    reclaimed = recover(session, published.append, 30)
    # Then the page is published anew under a new token
    assert [(r.scan_id, r.cause) for r in reclaimed] == [(message.scan_id, Cause.BROKER_LOST)]
    assert published[0].lease_token != message.lease_token


def test_a_restarted_worker_republishes_at_once_the_page_it_committed_but_never_published(
    env: dict[str, str], session: Session
) -> None:
    # Given a page committed by w1 (the row names it), whose publish died half-way
    (message,) = _queued(session, 1, queued_seconds_ago=0)
    session.execute(
        update(ScanCheckpoint)
        .where(ScanCheckpoint.scan_id == message.scan_id)
        .values(lease_owner="w1@test")
    )
    session.commit()
    broker_ledger.publishing(message)
    # When beat looks (within the grace), nothing happens; when w1 restarts, it reclaims it
    assert recover(session, lambda m: None, 30) == []
    restarted = recover(session, lambda m: None, 30, own_hostname="w1@test")
    assert [(r.scan_id, r.cause) for r in restarted] == [(message.scan_id, Cause.RESTART)]


@contextlib.contextmanager
def _popped_by_a_worker(message: PageMessage, seconds_ago: float) -> Iterator[None]:
    """`message` published and popped by a consumer `seconds_ago`, not marked taken.

    The consumer stays connected while the block runs: closing it gives the message back.
    """
    from worker.app import app, publisher

    publisher.publish_page(message)
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        assert channel.basic_get("marketscan", no_ack=False) is not None
        broker = redis.Redis.from_url(app.conf.broker_url)
        tags: list[bytes] = broker.zrange("unacked_index", 0, -1)
        assert len(tags) == 1
        broker.zadd("unacked_index", {tags[0]: time.time() - seconds_ago})
        yield


def test_a_page_a_live_worker_has_just_popped_is_not_mistaken_for_an_orphan(
    env: dict[str, str], session: Session
) -> None:
    # Given a page queued past the grace that a worker popped a moment ago, and has not yet
    # marked taken (the window between kombu's pop and the task_received signal)
    (message,) = _queued(session, 1, queued_seconds_ago=60)
    with _popped_by_a_worker(message, seconds_ago=0):
        # When beat's recovery looks, before the worker marks it
        sent = broker_ledger.Marker(broker_ledger.State.SENT)
        assert broker_ledger.markers([message]) == [sent]
        # Then the page is left to the worker that holds it
        assert recover(session, lambda m: None, 30) == []


def test_a_page_popped_long_ago_by_a_worker_that_never_marked_it_is_reclaimed(
    env: dict[str, str], session: Session
) -> None:
    # Given a page popped by a worker that died before it could mark the message taken
    (message,) = _queued(session, 1, queued_seconds_ago=60)
    with _popped_by_a_worker(message, seconds_ago=60):
        # When beat's recovery looks past the grace
        reclaimed = recover(session, lambda m: None, 30)
    # Then the page is reclaimed for its dead worker
    assert [(r.scan_id, r.cause) for r in reclaimed] == [
        (message.scan_id, Cause.TAKEN_BY_DEAD_WORKER)
    ]
