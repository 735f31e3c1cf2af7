"""Fixtures of the bot's acceptance tests: `marketscan bot` on the loopback Bot API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fakes.telegram_server import FakeTelegram
from tests.support.bot import ALLOWED, SLOW_SCAN_OPTIONS
from tests.support.processes import CeleryProcess, bot


@pytest.fixture
def celery_env(celery_env: dict[str, str], telegram: FakeTelegram) -> dict[str, str]:
    """Workers and the bot with Telegram on, pointed at the loopback Bot API."""
    return {
        **celery_env,
        "MARKETSCAN_TELEGRAM_BOT_TOKEN": telegram.token,
        "MARKETSCAN_TELEGRAM_API_URL": telegram.api_url,
        "MARKETSCAN_TELEGRAM_MIN_INTERVAL_SECONDS": "0.3",
        "MARKETSCAN_TELEGRAM_ALLOWED_USERS": str(ALLOWED),
        "MARKETSCAN_TELEGRAM_POLL_TIMEOUT_SECONDS": "5",
        "MARKETSCAN_BOT_MARKET_OPTIONS": SLOW_SCAN_OPTIONS,
    }


@pytest.fixture
def start_bot(celery_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., CeleryProcess]]:
    """Start `marketscan bot` processes, always stopped at teardown."""
    started: list[CeleryProcess] = []

    def start(**env: str) -> CeleryProcess:
        process = bot({**celery_env, **env}, tmp_path / f"bot-{len(started)}.log").start()
        started.append(process)
        process.wait_for_log("is polling")
        return process

    yield start
    for process in started:
        process.stop()
