"""The bot's acceptance kit: the users the tests play, and waits for what the bot does."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from models import ScanCheckpoint
from tests.fakes.telegram_server import FakeTelegram
from worker.db import driver_url

ALLOWED = 424242
STRANGER = 777001
WAIT_SECONDS = 60.0
# 2,000 items at 5 ms each: a scan that runs long enough to be paused midway.
SLOW_SCAN_OPTIONS = "items=2000,item_latency_ms=5,seed=11"


def wait_until(condition: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def scan_count(database_url: str) -> int:
    engine = create_engine(driver_url(database_url))
    with Session(engine) as session:
        count = session.scalar(select(func.count()).select_from(ScanCheckpoint)) or 0
    engine.dispose()
    return count


def ask(telegram: FakeTelegram, user_id: int, text: str) -> str:
    """Send `text` as `user_id` and return the bot's reply (the next message it sends them)."""
    before = len(telegram.sent_to(user_id))
    telegram.user_says(user_id, text)
    wait_until(lambda: len(telegram.sent_to(user_id)) > before, f"a reply to {text!r}")
    return telegram.sent_to(user_id)[before][1]
