"""Recovery reclaims each orphaned scan exactly once, however many recoverers race."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections import Counter

import redis
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import ScanCheckpoint
from worker import checkpoint_store as store
from worker.page_message import PageMessage
from worker.recovery import recover


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
        .values(lease_owner=owner, lease_expires_at=func.now() + offset)
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
    bodies = [json.loads(raw) for raw in client.lrange("marketscan", 0, -1)]
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
