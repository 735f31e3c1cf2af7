"""The bot SIGKILLed at random while users send /scan: every command still makes one scan.

For forty seconds two allowed users send /scan at random moments, Telegram hands some
updates out again, and the bot is SIGKILLed and restarted at random. Afterwards every
command has exactly one scan, under the id derived from its message, each completed
exactly, and each scan's handed-over message ends with its summary.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from models import ScanCheckpoint
from tests.fakes.telegram_server import FakeTelegram
from tests.support.processes import CeleryProcess, bot
from tests.support.scans import expected_opportunities, stored_opportunities, wait_for_status
from worker.bot.arguments import chat_scan_id
from worker.db import driver_url
from worker.domain.scan_params import ScanParams
from worker.notify import messages

USERS = (424242, 515151)
CHAOS_SECONDS = 40
COMMANDS = 8


@pytest.fixture
def celery_env(celery_env: dict[str, str], telegram: FakeTelegram) -> dict[str, str]:
    """Workers and bots with Telegram on, pointed at the loopback Bot API."""
    return {
        **celery_env,
        "MARKETSCAN_TELEGRAM_BOT_TOKEN": telegram.token,
        "MARKETSCAN_TELEGRAM_API_URL": telegram.api_url,
        "MARKETSCAN_TELEGRAM_MIN_INTERVAL_SECONDS": "0.3",
        "MARKETSCAN_TELEGRAM_ALLOWED_USERS": ",".join(map(str, USERS)),
        "MARKETSCAN_TELEGRAM_POLL_TIMEOUT_SECONDS": "2",
        "MARKETSCAN_BOT_MARKET_OPTIONS": "items=300,item_latency_ms=10,seed=9",
    }


def _start_bot(env: dict[str, str], tmp_path: Path, starts: list[CeleryProcess]) -> CeleryProcess:
    process = bot(env, tmp_path / f"bot-{len(starts)}.log").start()
    starts.append(process)
    process.wait_for_log("is polling")
    return process


def _scans(database_url: str) -> list[ScanCheckpoint]:
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        found = list(session.scalars(select(ScanCheckpoint)))
        session.expunge_all()
    engine.dispose()
    return found


def test_scans_from_a_chat_start_once_each_while_the_bot_is_killed_at_random(
    celery_env: dict[str, str],
    database_url: str,
    redis_url: str,
    telegram: FakeTelegram,
    start_worker: Callable[..., CeleryProcess],
    tmp_path: Path,
) -> None:
    env = celery_env
    seed = int.from_bytes(os.urandom(4), "big")
    moments = random.Random(seed)
    print(f"\nbot kills seeded with {seed}")
    start_worker()
    starts: list[CeleryProcess] = []
    current = _start_bot(env, tmp_path, starts)
    sent: list[tuple[int, int]] = []  # (chat, update_id) of every /scan
    try:
        # When users send /scan while the bot is SIGKILLed and restarted at random, and
        # Telegram hands some updates out twice
        deadline = time.monotonic() + CHAOS_SECONDS
        while time.monotonic() < deadline:
            time.sleep(moments.uniform(0.5, 3.0))
            if len(sent) < COMMANDS:
                user = moments.choice(USERS)
                sent.append((user, telegram.user_says(user, "/scan csgo")))
            if sent and moments.random() < 0.3:
                telegram.updates.redeliver(moments.choice(sent)[1])
            if moments.random() < 0.4:
                current.kill_group()
                time.sleep(moments.uniform(0.0, 2.0))
                current = _start_bot(env, tmp_path, starts)
        # (the last bot is left up until every update is confirmed)
        end = time.monotonic() + 60
        while telegram.updates.unconfirmed():
            assert time.monotonic() < end, "updates never confirmed"
            time.sleep(0.1)
        # Then there is exactly one scan per command, under the id of its message
        updates = telegram.updates
        wanted = {chat_scan_id(chat, updates.message_id_of(update)) for chat, update in sent}
        assert len(wanted) == COMMANDS
        scans = _scans(database_url)
        assert sorted(s.scan_id for s in scans) == sorted(wanted)
        # And each completed exactly, its finds those of an uninterrupted walk
        connection = redis.Redis.from_url(redis_url)
        for scan in scans:
            done = wait_for_status(database_url, scan.scan_id, timeout=90)
            assert (done.processed_items, done.total_items) == (300, 300)
            assert stored_opportunities(database_url, done.scan_id) == expected_opportunities(
                ScanParams.from_json(done.params)
            )
            # And the scan's message (the bot's, or the summary's own when the scan ended
            # before a restarted bot got to it) ends as the scan's summary
            where = _message_of(connection, done)
            summary = f"{done.scan_id.hex[:8]} completed: 300 items processed"
            end = time.monotonic() + 30
            while summary not in (telegram.text_of(*where) or ""):
                assert time.monotonic() < end, (
                    f"no summary on {where}: {telegram.text_of(*where)!r}; "
                    f"{connection.hgetall(messages.state_key(done.scan_id))}; "
                    f"{telegram.sent_to(where[0])}"
                )
                time.sleep(0.1)
        connection.close()
    finally:
        for process in starts:
            process.stop()
    print(f"commands {len(sent)}, bot starts {len(starts)}")


def _message_of(connection: redis.Redis, scan: ScanCheckpoint) -> tuple[int, int]:
    state = connection.hgetall(messages.state_key(scan.scan_id))
    assert messages.MESSAGE_ID.encode() in state, f"scan {scan.scan_id} has no message: {state}"
    chat = state.get(messages.CHAT_ID.encode()) or str(scan.user_id).encode()
    return int(chat), int(state[messages.MESSAGE_ID.encode()])
