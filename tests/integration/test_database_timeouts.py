"""Waits on the database are bounded: a database that never answers, or a statement stuck
behind another transaction's lock, ends in one clear line naming the database and the
bound, instead of a CLI, a bot or a client that hangs. Cleanup, whose batches are as long
as the operator makes them, is not cut short by the statement bound.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

import psycopg2
import pytest
from sqlalchemy import func, select, text, update

from models import ScanCheckpoint
from tests.support.opportunities import opportunity
from tests.support.scans import cli
from tests.support.services import plain_url
from worker.chain import lifecycle
from worker.db import checkpoints as store
from worker.db import get_session, reset_engines, retention, session_scope
from worker.domain.page_message import PageMessage
from worker.domain.scan_params import ScanParams
from worker.settings import get_settings

# Far longer than any bound these tests set: reaching it means the process hung.
HANG_SECONDS = 60
# Half of asyncpg's own connect timeout, which alone would end the wait at 60 s.
ASYNC_HANG_SECONDS = 30


@pytest.fixture
def blackhole() -> Iterator[tuple[str, int]]:
    """A TCP port on loopback that takes connections (the kernel completes the handshake)
    and never says a word: a database behind a dead proxy, or a frozen server."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield listener.getsockname()
    finally:
        listener.close()


def test_the_cli_gives_up_on_a_database_that_never_answers_naming_it_and_the_bound(
    blackhole: tuple[str, int],
) -> None:
    # Given DATABASE_URL pointing at a server that accepts connections and never answers
    host, port = blackhole
    environ = {
        **os.environ,
        "DATABASE_URL": f"postgresql://scanner:hunter2@{host}:{port}/marketscan",
        "MARKETSCAN_DATABASE_CONNECT_TIMEOUT_SECONDS": "2",
    }
    # When a command needs the database, Then it exits with one line naming the database
    # and the bound it ran into (and not its password), instead of hanging
    done = cli(["scan", "status", str(uuid.uuid4())], environ, timeout=HANG_SECONDS)
    assert done.returncode == 1, done.stderr
    assert done.stderr == (
        f"error: the database is unreachable: {host}:{port}/marketscan did not answer within"
        " 2 s (MARKETSCAN_DATABASE_CONNECT_TIMEOUT_SECONDS)\n"
    )


def test_the_async_engine_gives_up_on_a_database_that_never_answers(
    blackhole: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the async engine (the upstream StateManager's) pointed at a silent server
    host, port = blackhole
    monkeypatch.setenv("DATABASE_URL", f"postgresql://scanner:hunter2@{host}:{port}/marketscan")
    monkeypatch.setenv("MARKETSCAN_DATABASE_CONNECT_TIMEOUT_SECONDS", "2")
    get_settings.cache_clear()
    reset_engines()

    async def one_statement() -> None:
        async with get_session() as session:
            await session.execute(text("SELECT 1"))

    async def attempt() -> BaseException | None:
        task = asyncio.ensure_future(one_statement())
        done, _ = await asyncio.wait({task}, timeout=ASYNC_HANG_SECONDS)
        assert done, "the async engine waited for the silent database without end"
        return task.exception()

    # When a session runs a statement, Then the connection attempt fails, well before a hang
    try:
        failure = asyncio.run(attempt())
    finally:
        get_settings.cache_clear()
        reset_engines()
    assert isinstance(failure, TimeoutError), failure


def test_a_command_stuck_behind_a_lock_gives_up_naming_the_statement_bound(
    env: dict[str, str], database_url: str
) -> None:
    # Given a scan whose row another transaction holds locked, and will not let go of
    published: list[PageMessage] = []
    with session_scope() as session:
        scan_id = lifecycle.start_scan(
            session, ScanParams(game="csgo"), get_settings(), published.append
        )
    holder = psycopg2.connect(plain_url(database_url))
    try:
        with holder.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM scan_checkpoints WHERE scan_id = %s FOR UPDATE", (str(scan_id),)
            )
        # When the CLI pauses it, with statements bounded to a second
        environ = {**env, "MARKETSCAN_DATABASE_STATEMENT_TIMEOUT_SECONDS": "1"}
        done = cli(["scan", "pause", str(scan_id)], environ, timeout=HANG_SECONDS)
    finally:
        holder.close()
    # Then it gives up with one line naming the database and the bound, and the scan runs on
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: the database at ")
    assert "did not finish a statement within 1 s" in done.stderr
    assert "(MARKETSCAN_DATABASE_STATEMENT_TIMEOUT_SECONDS)" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_a_cleanup_batch_outlasting_the_statement_bound_still_finishes(
    env: dict[str, str], database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given statements bounded to a second, and old finished scans (beside a live one, which
    # keeps their day from being dropped whole, so they are deleted row by row)
    monkeypatch.setenv("MARKETSCAN_DATABASE_STATEMENT_TIMEOUT_SECONDS", "1")
    get_settings.cache_clear()
    reset_engines()
    old = _old_finished_scans(database_url, 3)
    # and one of their opportunities locked by another transaction for three times as long
    holder = psycopg2.connect(plain_url(database_url))
    with holder.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM scan_opportunities WHERE scan_id = %s FOR UPDATE", (str(old[0]),)
        )
    waiting = threading.Thread(target=_release_once_waited_on, args=(holder, database_url, 3.0))
    waiting.start()
    # When the cleanup runs on the process's own sessions, as beat's and the CLI's do
    try:
        with session_scope() as session:
            deleted = retention.cleanup_old_checkpoints(session, days=7, pause_ratio=0.0)
    finally:
        waiting.join()
    # Then its batch waited as long as it had to, and every old finished scan is gone
    assert deleted == 3
    with session_scope() as session:
        left = session.scalar(
            select(func.count()).select_from(ScanCheckpoint).where(ScanCheckpoint.scan_id.in_(old))
        )
    assert left == 0


def _old_finished_scans(database_url: str, count: int) -> list[uuid.UUID]:
    old = [uuid.uuid4() for _ in range(count)]
    with session_scope() as session:
        for scan_id in (*old, uuid.uuid4()):
            store.create_checkpoint(session, scan_id, 1, "market_scan")
        for scan_id in old:
            store.mark_checkpoint_completed(session, scan_id)
        session.add_all([opportunity(session, scan_id) for scan_id in old])
        session.commit()
        session.execute(
            update(ScanCheckpoint)
            .where(ScanCheckpoint.scan_id.in_(old))
            .values(updated_at=func.now() - timedelta(days=30))
        )
        session.commit()
    return old


def _release_once_waited_on(holder: object, database_url: str, seconds: float) -> None:
    """Roll `holder` back once another backend has waited `seconds` on its lock."""
    assert isinstance(holder, psycopg2.extensions.connection)
    watcher = psycopg2.connect(plain_url(database_url))
    watcher.autocommit = True
    try:
        deadline = time.monotonic() + HANG_SECONDS
        with watcher.cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND pid <> pg_backend_pid()"
                )
                row = cursor.fetchone()
                if row is not None and row[0] > 0:
                    break
                time.sleep(0.05)
        time.sleep(seconds)
    finally:
        holder.rollback()
        holder.close()
        watcher.close()
