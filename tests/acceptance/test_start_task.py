"""Apps that only have the broker start scans with `send_task`: exactly once, configured.

The app here is a bare Celery app that imports nothing of the project, as a Telegram bot
or a web backend would be. The start task's id is the scan's id.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import redis
from celery import Celery
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from models import ScanCheckpoint
from tests.support import commit_log
from tests.support.processes import CeleryProcess, worker
from tests.support.scans import (
    expected_opportunities,
    stored_opportunities,
    wait_for_status,
)
from tests.support.services import plain_url
from worker.db import driver_url
from worker.db.migrate import upgrade
from worker.db.scan_queries import top_opportunities
from worker.devtools.embedded import EmbeddedPostgres
from worker.domain.scan_params import ScanParams

START_TASK = "marketscan.scan.start"
ITEMS = 600


@pytest.fixture
def bot(redis_url: str) -> Iterator[Celery]:
    """A Celery app of the kind a bot builds: the broker URL, the queue, JSON; nothing else."""
    app = Celery("bot", broker=redis_url, set_as_current=False)
    app.conf.update(task_default_queue="marketscan", task_serializer="json")
    yield app
    app.close()


def scans_in(database_url: str) -> list[ScanCheckpoint]:
    engine = create_engine(driver_url(database_url))
    with Session(engine, expire_on_commit=False) as session:
        rows = list(session.scalars(select(ScanCheckpoint)))
    engine.dispose()
    return rows


def opportunity_fees(database_url: str, scan_id: uuid.UUID) -> list[tuple[int, int]]:
    """(reference, fee) of every find, the fee as results derive it from the scan's own."""
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        rows = top_opportunities(session, scan_id, top=100_000)
    engine.dispose()
    return [(row["reference_price_cents"], row["fee_cents"]) for row in rows]


def wait_for_scan(database_url: str, scan_id: uuid.UUID, timeout: float = 120) -> ScanCheckpoint:
    """The scan once it exists (a start sent is stored a moment later) and completed."""
    deadline = time.monotonic() + timeout
    while scan_id not in {row.scan_id for row in scans_in(database_url)}:
        assert time.monotonic() < deadline, f"scan {scan_id} was never stored"
        time.sleep(0.1)
    return wait_for_status(database_url, scan_id, timeout=timeout)


def assert_walked_once(database_url: str, scan_id: uuid.UUID, items: int) -> ScanCheckpoint:
    done = wait_for_scan(database_url, scan_id, timeout=180)
    assert (done.status, done.processed_items, done.total_items) == ("completed", items, items)
    params = ScanParams.from_json(done.params)
    assert stored_opportunities(database_url, scan_id) == expected_opportunities(params)
    commit_log.assert_each_position_committed_once(database_url, scan_id, items)
    return done


def test_the_same_start_sent_twice_with_one_task_id_makes_one_scan_walked_once(
    database_url: str, bot: Celery, start_worker: Callable[..., CeleryProcess]
) -> None:
    # Given a worker with two pool processes, so both starts can run at the same time
    commit_log.install(database_url)
    worker = start_worker(concurrency=2)
    scan_id = uuid.uuid4()
    params = {"game": "csgo", "market_options": {"items": ITEMS, "seed": 3}, "user_id": 9}
    # When the bot sends the same start twice with one task id (a client retry)
    for _ in range(2):
        bot.send_task(START_TASK, args=[params], task_id=str(scan_id))
    worker.wait_for_log(f"Task {START_TASK}[{scan_id}] succeeded")
    # Then there is exactly one scan, whose id is the task id, walked once with exact totals
    assert_walked_once(database_url, scan_id, ITEMS)
    deadline = time.monotonic() + 60
    while worker.log().count(f"Task {START_TASK}[{scan_id}] succeeded") < 2:
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.1)
    assert [(row.scan_id, row.user_id) for row in scans_in(database_url)] == [(scan_id, 9)]


def test_a_start_without_a_task_id_uses_celerys_id_as_the_scan_id(
    database_url: str, bot: Celery, start_worker: Callable[..., CeleryProcess]
) -> None:
    # Given a worker
    start_worker()
    # When the bot sends a start and keeps only what send_task returned
    sent = bot.send_task(START_TASK, args=[{"game": "csgo", "market_options": {"items": 150}}])
    # Then that id is the scan's id
    done = wait_for_scan(database_url, uuid.UUID(sent.id))
    assert done.processed_items == 150


def test_params_whose_scan_id_disagrees_with_the_task_id_are_refused_and_nothing_is_stored(
    database_url: str, bot: Celery, start_worker: Callable[..., CeleryProcess]
) -> None:
    # Given a worker
    worker = start_worker()
    task_id, other = uuid.uuid4(), uuid.uuid4()
    # When one start names another scan_id than its task id, and one names the same
    wrong = {"game": "csgo", "scan_id": str(other)}
    bot.send_task(START_TASK, args=[wrong], task_id=str(task_id))
    worker.wait_for_log(f"Task {START_TASK}[{task_id}] raised unexpected: InvalidInput")
    agreeing_id = uuid.uuid4()
    agreeing = {"game": "csgo", "scan_id": str(agreeing_id), "market_options": {"items": 50}}
    bot.send_task(START_TASK, args=[agreeing], task_id=str(agreeing_id))
    # Then the first is refused naming the field, and only the second scan exists
    assert f"scan_id {other} must equal the start task's id {task_id}" in worker.log()
    assert wait_for_scan(database_url, agreeing_id).processed_items == 50
    assert [row.scan_id for row in scans_in(database_url)] == [agreeing_id]


def test_a_start_refuses_a_fee_in_its_params_since_the_fee_is_the_workers(
    database_url: str, bot: Celery, start_worker: Callable[..., CeleryProcess]
) -> None:
    # Given a worker
    worker = start_worker()
    # When a start carries its own fee
    sent = bot.send_task(START_TASK, args=[{"game": "csgo", "fee": 0.0}])
    # Then it is refused, naming the setting that decides, and nothing is stored
    worker.wait_for_log(f"Task {START_TASK}[{sent.id}] raised unexpected: InvalidInput")
    assert "fee is the worker's configuration (MARKETSCAN_FEE)" in worker.log()
    assert scans_in(database_url) == []


def test_a_scan_started_through_the_task_judges_with_the_workers_fee_and_levels(
    celery_env: dict[str, str],
    database_url: str,
    bot: Celery,
    start_worker: Callable[..., CeleryProcess],
) -> None:
    # Given a worker configured with a 10 % fee and its own level "cheap"
    celery_env["MARKETSCAN_FEE"] = "0.1"
    celery_env["MARKETSCAN_LEVELS"] = "cheap=50-5000:0.02,standard=100-10000:0.05"
    start_worker()
    # When a bot starts a scan at that level through the task
    params = {"game": "csgo", "level": "cheap", "market_options": {"items": 800, "seed": 5}}
    sent = bot.send_task(START_TASK, args=[params])
    scan_id = uuid.UUID(sent.id)
    done = wait_for_scan(database_url, scan_id)
    # Then the stored params froze the worker's fee and level
    frozen = ScanParams.from_json(done.params)
    assert frozen.fee == 0.1
    assert (frozen.price_band, frozen.min_profit) == ((50, 5000), 0.02)
    # And every opportunity was judged with 10 %: exactly the uninterrupted walk's at 10 %
    stored = stored_opportunities(database_url, scan_id)
    assert stored and stored == expected_opportunities(frozen)
    at_seven = ScanParams.from_json({**done.params, "fee": 0.07})
    assert stored != expected_opportunities(at_seven)
    # (a fee is rounded up to a whole cent: never understated)
    assert {fee for _, fee in opportunity_fees(database_url, scan_id)} == {
        -(-reference * 1_000 // 10_000) for reference, _ in opportunity_fees(database_url, scan_id)
    }


def _wait_for_blocked_insert(database_url: str, timeout: float = 60) -> None:
    """Wait until some session waits on a lock to INSERT into scan_checkpoints."""
    deadline = time.monotonic() + timeout
    connection = psycopg2.connect(plain_url(database_url))
    connection.autocommit = True
    try:
        while True:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query ILIKE 'INSERT INTO scan_checkpoints%%'"
                )
                row: Any = cursor.fetchone()
            if row[0]:
                return
            assert time.monotonic() < deadline, "the start never reached its INSERT"
            time.sleep(0.05)
    finally:
        connection.close()


def _count_scans(database_url: str) -> int:
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        count = session.scalar(select(func.count()).select_from(ScanCheckpoint)) or 0
    engine.dispose()
    return count


def test_a_worker_killed_between_the_starts_commit_and_its_ack_leaves_one_scan(
    celery_env: dict[str, str],
    database_url: str,
    redis_url: str,
    bot: Celery,
    start_worker: Callable[..., CeleryProcess],
) -> None:
    """The kill lands after the commit and before the ack, deterministically:

    the test holds a SHARE lock on scan_checkpoints, so the start's INSERT waits; once it
    waits (pg_stat_activity), Redis is paused for writes (CLIENT PAUSE WRITE) and the lock
    released. The start commits, then blocks publishing its first page, and its ack (also a
    Redis write) cannot happen: the row exists and the message is still unacked when the
    worker is SIGKILLed. Redis re-delivers it after the visibility timeout.
    """
    celery_env["MARKETSCAN_VISIBILITY_TIMEOUT_SECONDS"] = "60"
    commit_log.install(database_url)
    broker = redis.Redis.from_url(redis_url)
    worker = start_worker("w1@test")
    scan_id = uuid.uuid4()
    params = {"game": "csgo", "market_options": {"items": 400, "seed": 11}}
    lock = psycopg2.connect(plain_url(database_url))
    try:
        with lock.cursor() as cursor:
            cursor.execute("LOCK TABLE scan_checkpoints IN SHARE MODE")
        # Given a start whose INSERT waits on the test's lock
        bot.send_task(START_TASK, args=[params], task_id=str(scan_id))
        _wait_for_blocked_insert(database_url)
        # When Redis stops taking writes, the start commits, and the worker is SIGKILLed
        broker.execute_command("CLIENT", "PAUSE", 120_000, "WRITE")
        lock.commit()
        deadline = time.monotonic() + 60
        while _count_scans(database_url) == 0:
            assert time.monotonic() < deadline, "the start never committed"
            time.sleep(0.05)
        worker.kill_group()
    finally:
        broker.execute_command("CLIENT", "UNPAUSE")
        lock.close()
    assert f"Task {START_TASK}[{scan_id}] succeeded" not in worker.log()
    assert broker.hlen("unacked") == 1, "the start message should be waiting for re-delivery"
    # Then a new worker gets the start again, creates nothing new, and gets the chain going
    killed_at = time.monotonic()
    second = start_worker("w2@test")
    second.wait_for_log(f"Task {START_TASK}[{scan_id}] succeeded", timeout=300)
    print(f"\nstart redelivered and done {time.monotonic() - killed_at:.1f}s after the kill")
    assert_walked_once(database_url, scan_id, 400)
    assert [row.scan_id for row in scans_in(database_url)] == [scan_id]
    broker.close()


def test_a_start_sent_while_postgres_is_down_is_retried_until_it_is_back(
    celery_env: dict[str, str], bot: Celery, tmp_path: Path
) -> None:
    # Given a worker on a PostgreSQL of its own, and that PostgreSQL stopped
    postgres = EmbeddedPostgres(tmp_path / "own-postgres")
    postgres.start()
    running = None
    try:
        upgrade(postgres.url)
        commit_log.install(postgres.url)
        env = {**celery_env, "DATABASE_URL": postgres.url}
        running = worker(env, tmp_path / "worker.log", concurrency=1).start()
        running.wait_for_log("ready.")
        postgres.stop()
        # When a bot sends a start, and PostgreSQL comes back once the start has failed
        scan_id = uuid.uuid4()
        params = {"game": "csgo", "market_options": {"items": 300, "seed": 2}}
        bot.send_task(START_TASK, args=[params], task_id=str(scan_id))
        running.wait_for_log("OperationalError")
        postgres.start()
        # Then the start is retried, and its scan runs once to exact totals
        assert_walked_once(postgres.url, scan_id, 300)
        assert [row.scan_id for row in scans_in(postgres.url)] == [scan_id]
    finally:
        if running is not None:
            running.stop()
        postgres.stop()
